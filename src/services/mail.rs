//! Outgoing mail through lettre: a folder of .eml files by default, SMTP by configuration.

use std::path::PathBuf;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
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
    #[error("could not deliver the email: {0}")]
    Send(String),
}

#[derive(Clone)]
pub enum Mailer {
    /// One `<name>.eml` per email; the name is chosen by the caller, so re-sending the same
    /// email overwrites it instead of adding a copy.
    Folder(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(p) => write!(f, "Mailer::Folder({})", p.display()),
            Self::Smtp(_) => f.write_str("Mailer::Smtp"),
        }
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        let raw = settings.mail.url.expose_secret();
        if let Some(path) = raw.strip_prefix("file://") {
            if path.is_empty() {
                return Err(MailError::Config("file:// needs a folder".into()));
            }
            return Ok(Self::Folder(PathBuf::from(path)));
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
        Ok(Self::Smtp(builder.build()))
    }

    /// Sends `message`; `name` identifies it (the .eml file name in folder mode).
    pub async fn send(&self, message: Message, name: &str) -> Result<(), MailError> {
        match self {
            Self::Folder(dir) => {
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
            Self::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn mailbox(raw: &str) -> Result<Mailbox, MailError> {
    raw.parse()
        .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))
}

/// The "your account has been deleted" email. Its Message-ID derives from the request id, so
/// a retried send is recognisably the same message.
pub fn deletion_confirmation(
    settings: &Settings,
    to: &str,
    request_id: &str,
    receipt: &str,
) -> Result<Message, MailError> {
    let status_url = format!(
        "{}/deletions/{receipt}",
        settings.server.public_url.trim_end_matches('/')
    );
    let body = format!(
        "Your VSee Messenger account has been deleted, together with all the data\n\
         associated with it. Thank you for using our service!\n\n\
         Deletion receipt: {receipt}\n\n\
         You can check the record of this deletion at:\n{status_url}\n\n\
         If you did not ask for this, or have questions, please contact our support\n\
         at {support}.\n",
        support = settings.support.email
    );
    Message::builder()
        .from(mailbox(&settings.mail.from)?)
        .to(mailbox(to)?)
        .subject("Your account has been deleted")
        .message_id(Some(format!("<deletion-{request_id}@erasure>")))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))
}

pub fn password_reset(settings: &Settings, to: &str, link: &str, minutes: i64) -> Result<Message, MailError> {
    let body = format!(
        "Someone asked to reset the password of your VSee Messenger account.\n\n\
         To choose a new password, open this link within {minutes} minutes\n\
         (it works once):\n{link}\n\n\
         If it was not you, ignore this email: your password stays as it is.\n"
    );
    Message::builder()
        .from(mailbox(&settings.mail.from)?)
        .to(mailbox(to)?)
        .subject("Reset your password")
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))
}
