use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    erasure::cli::run(erasure::cli::Cli::parse()).await
}
