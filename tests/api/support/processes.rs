//! Real `erasure` processes (serve, worker, …) next to the test: erasure-testkit's `Process`
//! running this build's binary, with its errors turned into test failures. Its fields
//! (`child`, `log`, `port`) and `log()` are the kit's, through `Deref`.

use std::{
    collections::HashMap,
    ops::{Deref, DerefMut},
    path::Path,
    process::ExitStatus,
    time::Duration,
};

/// A real `erasure` process with its JSON log captured; killed when dropped if still running.
pub struct Process(erasure_testkit::Process);

impl Process {
    /// Starts `erasure <args>` with exactly `vars` as its environment; when `http` waits for it
    /// to report its port.
    pub fn start(args: &[&str], vars: &HashMap<String, String>, http: bool) -> Process {
        let binary = Path::new(env!("CARGO_BIN_EXE_erasure"));
        match erasure_testkit::Process::start(binary, args, vars, http) {
            Ok(process) => Process(process),
            Err(e) => panic!("erasure {args:?}: {e:#}"),
        }
    }

    /// `http://127.0.0.1:<port>` of an HTTP process.
    pub fn address(&self) -> String {
        self.0.address().expect("an HTTP process")
    }

    /// SIGTERM, then waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.0.terminate(within).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_hard(&mut self) {
        self.0.kill_hard().unwrap_or_else(|e| panic!("{e:#}"));
    }
}

impl Deref for Process {
    type Target = erasure_testkit::Process;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
