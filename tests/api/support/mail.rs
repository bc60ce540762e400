//! The emails a test's server sent: files in its outbox on the embedded stack, what the SMTP
//! server received on the server stack.

use std::{path::PathBuf, time::Duration};

use erasure_testkit::eventually;

use super::TestApp;

impl TestApp {
    pub fn outbox(&self) -> PathBuf {
        self.data.path().join("outbox")
    }

    /// Where this test's emails end up: the mail folder, or what the SMTP server received.
    pub fn mail_dir(&self) -> PathBuf {
        match &self.server {
            Some(server) => server.mail_dir.clone(),
            None => self.outbox(),
        }
    }

    pub fn outbox_files(&self) -> Vec<(String, String)> {
        let Ok(dir) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<_> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    decode_quoted_printable(&std::fs::read_to_string(e.path()).unwrap()),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The first email (decoded) that `matches`, once it has arrived.
    pub async fn wait_for_mail(&self, matches: impl Fn(&str) -> bool) -> String {
        eventually("the expected email", Duration::from_secs(15), || async {
            self.outbox_files()
                .into_iter()
                .map(|(_, eml)| eml)
                .find(|eml| matches(eml))
        })
        .await
    }

    /// Waits until every notice has been handled by its job (sent, or found to need none).
    pub async fn wait_for_notices(&self) {
        self.wait_for_count(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL",
            0,
            Duration::from_secs(15),
        )
        .await;
    }
}

/// What a mail client shows: soft line breaks joined and `=XX` escapes decoded (lettre sends
/// quoted-printable when a line is long, e.g. a link with a token).
pub fn decode_quoted_printable(eml: &str) -> String {
    let joined = eml.replace("=\r\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reset token in an email's link.
pub fn reset_token_in(eml: &str) -> String {
    eml.split("/reset-password?token=")
        .nth(1)
        .expect("a reset link")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
