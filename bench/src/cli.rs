//! The command line, and the sizes and account shapes it selects.

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StackArg {
    Sqlite,
    Server,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Section {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    N,
    O,
}

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks the deletion pipeline on SQLite and (with URLs) on PostgreSQL + Redis"
)]
pub struct Args {
    /// Which stacks: sqlite, server (needs the URLs) or both (server only when URLs are given).
    #[arg(long, value_enum, default_value_t = StackArg::Both)]
    pub stack: StackArg,
    /// Multiplies the number of jobs and accounts of (a), (b), (c) and (f).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// A small smoke run (about a tenth of the work).
    #[arg(long)]
    pub quick: bool,
    /// Admin URL of a PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long, env = "ERASURE_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// URL of a Redis server; keys go under a unique prefix and are deleted after.
    #[arg(long, env = "ERASURE_BENCH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// queue.batch_size for our workers and the raw apalis baselines alike.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// queue.poll_interval_ms for our workers and the raw apalis baselines alike.
    #[arg(long, default_value_t = 25)]
    pub poll_interval_ms: u64,
    /// Messages of the big account of (e) (default 1,000,000; 100,000 with --quick).
    #[arg(long)]
    pub big_messages: Option<u64>,
    /// Ledger entries of (i) (default 1,000,000; 50,000 with --quick).
    #[arg(long)]
    pub ledger_entries: Option<usize>,
    /// Extra ERASURE_<SECTION>__<KEY>=VALUE settings for the application (repeatable), e.g.
    /// --set ERASURE_PURGE__CHUNK_SIZE=1000.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Internal: seed one account with this many messages (configured by the ERASURE_*
    /// environment), print its id and exit. (e) seeds this way, in a child process, so the
    /// measuring process's heap is not inflated by the seeding beforehand.
    #[arg(long, hide = true)]
    pub seed_child: Option<u64>,
    /// Internal: run `erasure ingest-email` (the same code as the binary) on stdin and exit:
    /// (g) pipes each message to a process of its own, as an MTA does.
    #[arg(long, hide = true)]
    pub ingest_child: bool,
    /// Deletions in the backlog of (n) (default 100,000; 10,000 with --quick).
    #[arg(long)]
    pub backlog: Option<u64>,
    /// Deletions each process layout of (o) completes (default 4,000; 1,000 with --quick).
    #[arg(long)]
    pub layout_deletions: Option<u64>,
    /// Run only these sections (comma-separated: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Section>,
}

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub messages: u64,
    pub contacts: u64,
    pub calls: u64,
    pub devices: u64,
}

impl Shape {
    pub fn describe(&self) -> String {
        format!(
            "{} messages, {} contacts, {} calls, {} devices",
            self.messages, self.contacts, self.calls, self.devices
        )
    }
}

pub const TYPICAL: Shape = Shape {
    messages: 1_000,
    contacts: 200,
    calls: 50,
    devices: 3,
};
pub const TYPICAL_10X: Shape = Shape {
    messages: 10_000,
    contacts: 2_000,
    calls: 500,
    devices: 3,
};
pub const SMALL: Shape = Shape {
    messages: 50,
    contacts: 10,
    calls: 5,
    devices: 1,
};

#[derive(Debug, Clone)]
pub struct Sizes {
    pub noop_jobs: u64,
    /// Jobs for the stock-poll-strategy variant of (a) (informational).
    pub noop_jobs_stock: u64,
    /// apalis-redis 1.0 fails every fetch at 8,000 due jobs: never more than this waiting.
    pub redis_window: u64,
    pub deletions: usize,
    pub purge_accounts: usize,
    pub latency_rate: f64,
    pub latency_secs: u64,
    pub big_messages: u64,
    pub deletions_10x: usize,
    pub purge_accounts_10x: usize,
    /// (g): messages through the webhook, and through ingest-email processes.
    pub intake_messages: usize,
    pub piped_messages: usize,
    /// (h): tickets in the queue, and requests timed per path.
    pub tickets: usize,
    pub page_requests: usize,
    /// (i): ledger entries, and proofs / page requests timed.
    pub ledger_entries: usize,
    pub ledger_requests: usize,
    /// (j): dormant accounts of the bulk deletion.
    pub bulk_accounts: u64,
    /// (k): live data keys a rotation moves.
    pub rotation_keys: u64,
    /// (m): seconds each HTTP load runs.
    pub http_secs: f64,
    /// (n): deletions in the backlog, and deletions of its steady-rate measurement.
    pub backlog: u64,
    pub steady_deletions: u64,
    /// (o): deletions each process layout completes.
    pub layout_deletions: u64,
}

impl Sizes {
    pub fn new(args: &Args) -> Self {
        let scale = if args.scale.is_finite() && args.scale > 0.0 {
            args.scale
        } else {
            1.0
        };
        let q = if args.quick { 0.2 } else { 1.0 };
        let n = |base: f64, min: f64| (base * scale * q).round().max(min);
        Self {
            noop_jobs: n(20_000.0, 500.0) as u64,
            noop_jobs_stock: n(5_000.0, 500.0) as u64,
            redis_window: 5_000,
            deletions: n(100.0, 5.0) as usize,
            purge_accounts: n(50.0, 3.0) as usize,
            latency_rate: 10.0,
            latency_secs: if args.quick { 5 } else { 20 },
            big_messages: args
                .big_messages
                .unwrap_or(if args.quick { 100_000 } else { 1_000_000 }),
            deletions_10x: n(25.0, 3.0) as usize,
            purge_accounts_10x: n(10.0, 2.0) as usize,
            intake_messages: n(2_000.0, 100.0) as usize,
            piped_messages: n(50.0, 10.0) as usize,
            tickets: if args.quick { 20_000 } else { 100_000 },
            page_requests: if args.quick { 50 } else { 200 },
            ledger_entries: args
                .ledger_entries
                .unwrap_or(if args.quick { 50_000 } else { 1_000_000 }),
            ledger_requests: if args.quick { 50 } else { 200 },
            bulk_accounts: if args.quick { 20_000 } else { 100_000 },
            rotation_keys: if args.quick { 20_000 } else { 100_000 },
            http_secs: if args.quick { 2.0 } else { 5.0 },
            backlog: args.backlog.unwrap_or(if args.quick { 10_000 } else { 100_000 }),
            steady_deletions: if args.quick { 1_000 } else { 5_000 },
            layout_deletions: args
                .layout_deletions
                .unwrap_or(if args.quick { 1_000 } else { 4_000 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn quick_sizes_are_a_fifth_with_floors() {
        let args = Args::parse_from(["bench", "--quick", "--only", "a,e", "--big-messages", "10"]);
        let sizes = Sizes::new(&args);
        assert_eq!(args.only, [Section::A, Section::E]);
        assert_eq!(
            (sizes.noop_jobs, sizes.deletions, sizes.purge_accounts),
            (4_000, 20, 10)
        );
        assert_eq!((sizes.latency_secs, sizes.big_messages), (5, 10));
        let tiny = Sizes::new(&Args::parse_from(["bench", "--scale", "0.001"]));
        assert_eq!(
            (tiny.noop_jobs, tiny.deletions, tiny.purge_accounts_10x),
            (500, 5, 2)
        );
    }
}
