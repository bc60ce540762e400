//! Reading one raw message: what it asks, or why it asks nothing. Pure: no database, no clock.

use mail_parser::{Message, MessageParser};
use sha2::{Digest, Sha256};

use crate::domain::Email;

/// A message a person wrote to us.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The Message-ID, or `sha256:<hex>` of the raw bytes when it has none (or one too long
    /// to be a real one): the same message twice gives the same key.
    pub key: String,
    pub sender: Email,
    pub subject: String,
    /// Plain text; an HTML-only message is converted, never kept to be rendered.
    pub body: String,
    /// The Message-IDs it answers (In-Reply-To, then References), newest first.
    pub replies_to: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    Request(Request),
    /// An auto-reply or a bounce: no person asked anything (RFC 3834, RFC 3464).
    Automatic(&'static str),
}

/// Why a message is not readable as mail; the message is quarantined, not lost.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the message is not readable as mail: {0}")]
pub struct Unreadable(pub String);

const MAX_KEY_LEN: usize = 255;

pub fn read(raw: &[u8]) -> Result<Reading, Unreadable> {
    read_parsed(&parse(raw)?, raw)
}

/// The message's structure, parsed once for reading and for the sender checks.
pub fn parse(raw: &[u8]) -> Result<Message<'_>, Unreadable> {
    MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| Unreadable("it has no header section".into()))
}

pub fn read_parsed(message: &Message<'_>, raw: &[u8]) -> Result<Reading, Unreadable> {
    if let Some(why) = automatic(message) {
        return Ok(Reading::Automatic(why));
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .ok_or_else(|| Unreadable("it has no From address".into()))?;
    let sender =
        Email::parse(from).map_err(|e| Unreadable(format!("its From address is not one we accept ({e})")))?;
    let key = match message.message_id() {
        Some(id) if !id.trim().is_empty() && id.len() <= MAX_KEY_LEN => id.trim().to_owned(),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    let mut replies_to = Vec::new();
    for header in [message.in_reply_to(), message.references()] {
        for id in header.as_text_list().unwrap_or_default().iter().rev() {
            let id = id.trim();
            if !id.is_empty() && id.len() <= MAX_KEY_LEN && !replies_to.iter().any(|known| known == id) {
                replies_to.push(id.to_owned());
            }
        }
    }
    Ok(Reading::Request(Request {
        key,
        sender,
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        body: message.body_text(0).unwrap_or_default().into_owned(),
        replies_to,
    }))
}

/// Why the message was sent by a machine, if it was.
fn automatic(message: &Message<'_>) -> Option<&'static str> {
    let header = |name: &str| {
        message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("an auto-reply (Auto-Submitted)");
    }
    if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "auto_reply" | "list" | "junk")) {
        return Some("an auto-reply (Precedence)");
    }
    if header("X-Autoreply").is_some() || header("X-Autorespond").is_some() {
        return Some("an auto-reply (X-Autoreply)");
    }
    let content_type = header("Content-Type").unwrap_or_default();
    if content_type.starts_with("multipart/report") && content_type.contains("delivery-status") {
        return Some("a bounce (delivery status report)");
    }
    if header("Return-Path").is_some_and(|v| v == "<>") {
        return Some("a bounce (null return path)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> Request {
        match read(raw.as_bytes()) {
            Ok(Reading::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    const PLAIN: &str = "From: Mark <Mark@VSee.com>\r\nTo: help@vsee.com\r\nSubject: Please close my account\r\nMessage-ID: <abc@vsee.com>\r\n\r\nI am leaving.\r\n";

    #[test]
    fn a_person_asking_is_a_request_with_a_normalised_sender() {
        let r = request(PLAIN);
        assert_eq!(r.sender.as_str(), "mark@vsee.com");
        assert_eq!(r.key, "abc@vsee.com");
        assert_eq!(r.subject, "Please close my account");
        assert_eq!(r.body.trim(), "I am leaving.");
    }

    #[test]
    fn a_reply_names_what_it_answers() {
        let raw = PLAIN.replace(
            "Message-ID: <abc@vsee.com>\r\n",
            "Message-ID: <r2@vsee.com>\r\nIn-Reply-To: <notification-1@erasure>\r\nReferences: <abc@vsee.com> <notification-1@erasure>\r\n",
        );
        assert_eq!(
            request(&raw).replies_to,
            ["notification-1@erasure", "abc@vsee.com"]
        );
        assert!(request(PLAIN).replies_to.is_empty());
    }

    #[test]
    fn without_a_message_id_the_same_bytes_give_the_same_key() {
        let raw = PLAIN.replace("Message-ID: <abc@vsee.com>\r\n", "");
        let (a, b) = (request(&raw), request(&raw));
        assert!(a.key.starts_with("sha256:"));
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, request(&raw.replace("leaving", "going")).key);
    }

    #[test]
    fn html_is_read_as_text() {
        let raw = "From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>Close <b>it</b><script>x()</script></p>\r\n";
        let body = request(raw).body;
        assert!(body.contains("Close") && !body.contains("<b>"), "{body}");
    }

    #[test]
    fn machines_asking_nothing_are_told_apart() {
        for (extra, why) in [
            ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
            ("Precedence: bulk\r\n", "Precedence"),
            ("X-Autoreply: yes\r\n", "X-Autoreply"),
            ("Return-Path: <>\r\n", "null return path"),
            (
                "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
                "delivery status",
            ),
        ] {
            match read(format!("{extra}{PLAIN}").as_bytes()) {
                Ok(Reading::Automatic(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{extra}: {other:?}"),
            }
        }
        // "Auto-Submitted: no" is a person.
        request(&format!("Auto-Submitted: no\r\n{PLAIN}"));
    }

    #[test]
    fn what_is_not_mail_is_unreadable() {
        for raw in [
            "",
            "\r\n\r\nonly a body",
            "Subject: no sender\r\n\r\nhi",
            "From: not an address\r\n\r\nhi",
        ] {
            assert!(read(raw.as_bytes()).is_err(), "{raw:?}");
        }
    }
}
