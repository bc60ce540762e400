//! A real `erasure` process (serve, worker, …) with its JSON log captured.

use std::{
    collections::HashMap,
    io::BufRead,
    path::Path,
    process::{Child, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;

/// A running `erasure` process; killed when dropped if it is still running.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    /// Its standard error so far: one JSON log line a line.
    pub log: Arc<Mutex<String>>,
    /// The port it listens on, for an HTTP process.
    pub port: Option<u16>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `program <args>` (the `erasure` binary) with exactly `vars` as its environment,
    /// logging JSON at level info; when `http`, waits (at most 30 s) for it to report the port
    /// it listens on.
    pub fn start(
        program: &Path,
        args: &[&str],
        vars: &HashMap<String, String>,
        http: bool,
    ) -> anyhow::Result<Process> {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(vars)
            .env("ERASURE_LOG__LEVEL", "info");
        if vars.get("ERASURE_ENV").map(String::as_str) != Some("production") {
            // Production logs JSON by itself; elsewhere ask for it, to read the port.
            command.env("ERASURE_LOG__FORMAT", "json");
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("{} starts", program.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().context("the process's stderr")?;
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "listening"
                    {
                        let _ = port_tx.send(v["fields"]["port"].as_u64().unwrap_or(0));
                    }
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        // From here on, dropping `process` kills the child whatever goes wrong.
        let mut process = Process {
            child,
            log,
            port: None,
            reader: Some(reader),
        };
        if http {
            let Ok(port) = port_rx.recv_timeout(Duration::from_secs(30)) else {
                bail!("no port reported: {}", process.log());
            };
            process.port = Some(u16::try_from(port).context("the reported port")?);
        }
        Ok(process)
    }

    /// `http://127.0.0.1:<port>`; `None` for a process without HTTP.
    pub fn address(&self) -> Option<String> {
        self.port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// Sends `signal` (as `kill` takes it: `-TERM`, `-KILL`, …).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .context("kill runs")?;
        if !sent.success() {
            bail!("kill {signal} {}: {sent}", self.child.id());
        }
        Ok(())
    }

    /// SIGTERM, then waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.signal("-TERM")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("still running {within:?} after SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_hard(&mut self) -> anyhow::Result<()> {
        self.signal("-KILL")?;
        let _ = self.child.wait();
        Ok(())
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
