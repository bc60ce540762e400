//! Outgoing mail through lettre: a folder of .eml files by default, SMTP by configuration.
//! The mailer also holds the letterhead every email shares (sender, site, support address);
//! the emails themselves are in `letters`.

mod letters;
mod ticket_letters;

pub use letters::stored_address;
pub use ticket_letters::TicketLetter;

use std::path::PathBuf;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox,
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail.url {0}")]
    Config(String),
    #[error("could not build the email: {0}")]
    Build(String),
    /// The mail server (or the folder) could not take it now; trying again may work.
    #[error("could not deliver the email: {0}")]
    Send(String),
    /// The mail server refused it for good (a 5xx answer): trying again will not help.
    #[error("the mail server refused the email: {0}")]
    Refused(String),
}

impl MailError {
    /// Whether another attempt cannot succeed: the email cannot be built, or the server
    /// refused it permanently.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Build(_) | Self::Refused(_))
    }
}

#[derive(Clone)]
enum Transport {
    /// One `<name>.eml` per email; the name is chosen by the caller, so re-sending the same
    /// email overwrites it instead of adding a copy.
    Folder(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// What every email shares.
#[derive(Debug, Clone)]
pub struct Letterhead {
    /// The `From:` mailbox.
    pub from: Mailbox,
    /// The site the emails link to, without a trailing slash.
    pub public_url: String,
    pub support_email: String,
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    letterhead: Letterhead,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Folder(p) => write!(f, "Mailer::Folder({})", p.display()),
            Transport::Smtp(_) => f.write_str("Mailer::Smtp"),
        }
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        let letterhead = Letterhead {
            from: mailbox(&settings.mail.from).map_err(|e| MailError::Config(format!("mail.from: {e}")))?,
            public_url: settings.server.public_url.trim_end_matches('/').to_owned(),
            support_email: settings.support.email.clone(),
        };
        Ok(Self {
            transport: transport(settings)?,
            letterhead,
        })
    }

    pub fn letterhead(&self) -> &Letterhead {
        &self.letterhead
    }

    /// An absolute link to `path` on the site.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.letterhead.public_url)
    }

    /// Sends `message`; `name` identifies it (the .eml file name in folder mode).
    pub async fn send(&self, message: Message, name: &str) -> Result<(), MailError> {
        match &self.transport {
            Transport::Folder(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                tokio::fs::rename(&tmp, dir.join(format!("{name}.eml")))
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))
            }
            Transport::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    MailError::Refused(e.to_string())
                } else {
                    MailError::Send(e.to_string())
                }
            }),
        }
    }
}

fn transport(settings: &Settings) -> Result<Transport, MailError> {
    let raw = settings.mail.url.expose_secret();
    if let Some(path) = raw.strip_prefix("file://") {
        if path.is_empty() {
            return Err(MailError::Config("file:// needs a folder".into()));
        }
        return Ok(Transport::Folder(PathBuf::from(path)));
    }
    let url = url::Url::parse(raw).map_err(|e| MailError::Config(format!("is not a URL: {e}")))?;

    let host = url
        .host_str()
        .ok_or_else(|| MailError::Config("needs a host".into()))?
        .to_owned();
    let builder = match url.scheme() {
        "smtp" => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(url.port().unwrap_or(25))
        }
        "smtps" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(|e| MailError::Config(e.to_string()))?
            .port(url.port().unwrap_or(465)),
        "smtp+starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| MailError::Config(e.to_string()))?
            .port(url.port().unwrap_or(587)),
        other => {
            return Err(MailError::Config(format!(
                "scheme {other} is not file, smtp, smtps or smtp+starttls"
            )));
        }
    };
    let builder = if !settings.mail.username.is_empty() {
        builder.credentials(Credentials::new(
            settings.mail.username.clone(),
            settings.mail.password.expose_secret().to_owned(),
        ))
    } else if url.username().is_empty() {
        builder
    } else {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        builder.credentials(Credentials::new(user, pass))
    };
    Ok(Transport::Smtp(builder.build()))
}

/// URL user info is percent-encoded (RFC 3986); a `+` in it is a plus, not a space.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn mailbox(raw: &str) -> Result<Mailbox, MailError> {
    raw.parse()
        .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn credentials_in_the_url_keep_their_plus_signs() {
        assert_eq!(percent_decode("p%40ss+word%2F1"), "p@ss+word/1");
    }
}
