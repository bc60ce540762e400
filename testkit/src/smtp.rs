//! A real SMTP server to send mail to and read it back from.

use std::{
    io::BufRead,
    path::Path,
    process::{Child, Stdio},
};

use anyhow::Context;

/// tests/support/smtp_sink.py: stores every message it accepts as `<dir>/<n>.eml` and refuses
/// recipients whose local part starts with "bounce" (550).
pub const SMTP_SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/smtp_sink.py");

/// The SMTP sink, on a free loopback port; stopped when dropped (it also exits by itself when
/// its standard input closes, so it never outlives its owner).
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    pub port: u16,
}

impl SmtpSink {
    /// Starts [`SMTP_SINK`] writing to `dir` (needs Debian's python3-aiosmtpd; `.ci/run`
    /// installs it) and waits for it to report its port.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let child = std::process::Command::new("/usr/bin/python3")
            .arg(SMTP_SINK)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("python3 runs (apt-get install python3-aiosmtpd, or bash .ci/run)")?;
        // From here on, dropping `sink` stops the child whatever goes wrong.
        let mut sink = Self { child, port: 0 };
        let stdout = sink.child.stdout.take().context("the SMTP sink's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .context("the SMTP sink prints its port")?;
        sink.port = line.trim().parse().with_context(|| {
            format!("the SMTP sink did not start (is python3-aiosmtpd installed?): {line:?}")
        })?;
        Ok(sink)
    }

    /// `smtp://127.0.0.1:<port>`, for `mail.url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
