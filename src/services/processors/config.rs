//! The downstream processors, as the operator lists them (`notify.processors_file`):
//!
//! ```toml
//! [[processor]]
//! name = "billing"            # 1-64 of a-z 0-9 - _; names the processor in the ledger
//! url = "https://billing.example/erasure-webhook"
//! secret = "…"                # at least 32 characters; signs each delivery (HMAC-SHA256)
//! ```

use std::{fmt, path::Path};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// One processor told of each completed deletion.
#[derive(Clone)]
pub struct Processor {
    pub name: String,
    pub url: url::Url,
    secret: SecretString,
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Processor {
    pub fn new(name: &str, url: &str, secret: &str) -> Result<Self, String> {
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(format!(
                "processor name {name:?} must be 1 to 64 of a-z, 0-9, - and _"
            ));
        }
        let url = url::Url::parse(url).map_err(|e| format!("processor {name}: url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("processor {name}: url must be http(s)://host/…"));
        }
        if secret.chars().count() < 32 {
            return Err(format!(
                "processor {name}: secret must have at least 32 characters"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            url,
            secret: SecretString::from(secret.to_owned()),
        })
    }

    pub(super) fn secret(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorsFile {
    #[serde(default)]
    processor: Vec<ProcessorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorEntry {
    name: String,
    url: String,
    secret: String,
}

/// The processors listed in `path` (none for an empty path). Names are unique; in production
/// every URL is https.
pub fn load(path: &str, production: bool) -> Result<Vec<Processor>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(Path::new(path))
        .map_err(|e| format!("notify.processors_file {path}: {e}"))?;
    parse(&text, production)
}

pub fn parse(text: &str, production: bool) -> Result<Vec<Processor>, String> {
    let file: ProcessorsFile = toml::from_str(text).map_err(|e| format!("notify.processors_file: {e}"))?;
    let mut processors: Vec<Processor> = Vec::with_capacity(file.processor.len());
    for entry in file.processor {
        let processor = Processor::new(&entry.name, &entry.url, &entry.secret)?;
        if processors.iter().any(|p| p.name == processor.name) {
            return Err(format!("processor {} is listed twice", processor.name));
        }
        if production && processor.url.scheme() != "https" {
            return Err(format!(
                "processor {}: production sends webhooks over https only",
                processor.name
            ));
        }
        processors.push(processor);
    }
    Ok(processors)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_file_lists_processors_and_refuses_what_cannot_work() {
        let good = format!(
            "[[processor]]\nname = \"billing\"\nurl = \"https://billing.example/hook\"\nsecret = \"{SECRET}\"\n"
        );
        let found = parse(&good, true).unwrap();
        assert_eq!(found[0].name, "billing");
        assert!(
            !format!("{:?}", found[0]).contains(SECRET),
            "the secret is redacted"
        );
        assert!(parse("", true).unwrap().is_empty());
        for bad in [
            format!("{good}{good}"),
            good.replace("billing\"", "Bill ing\""),
            good.replace(SECRET, "short"),
            good.replace("https://billing.example/hook", "ftp://x/"),
            good.replace("secret", "secrets"),
        ] {
            assert!(parse(&bad, false).is_err(), "{bad}");
        }
        let plain = good.replace("https://", "http://");
        assert!(parse(&plain, false).is_ok());
        assert!(parse(&plain, true).is_err(), "production wants https");
    }
}
