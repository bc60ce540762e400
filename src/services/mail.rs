//! Outgoing mail through lettre: a folder of .eml files by default, SMTP by configuration.

use std::path::PathBuf;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;

use crate::{config::Settings, domain::Email};

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
            Self::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    MailError::Refused(e.to_string())
                } else {
                    MailError::Send(e.to_string())
                }
            }),
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

/// A recipient as SMTP and the `To:` header carry it: the domain in its ASCII form.
fn recipient(to: &Email) -> Result<Mailbox, MailError> {
    mailbox(to.to_ascii())
}

/// The stored form of an address, parsed again before sending: an address stored before
/// the grammar was narrowed may be one the mailer cannot take, which is permanent.
pub fn stored_address(raw: &str) -> Result<Email, MailError> {
    Email::parse(raw).map_err(|e| MailError::Build(e.to_string()))
}

fn plain(
    settings: &Settings,
    to: &Email,
    subject: &str,
    message_id: Option<String>,
    body: String,
) -> Result<Message, MailError> {
    Message::builder()
        .from(mailbox(&settings.mail.from)?)
        .to(recipient(to)?)
        .subject(subject)
        .message_id(message_id)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))
}

/// The "your account has been deleted" email. Its Message-ID derives from the request id, so
/// a retried send is recognisably the same message.
pub fn deletion_confirmation(
    settings: &Settings,
    to: &Email,
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
    plain(
        settings,
        to,
        "Your account has been deleted",
        Some(format!("<deletion-{request_id}@erasure>")),
        body,
    )
}

pub fn password_reset(
    settings: &Settings,
    to: &Email,
    notification_id: &str,
    link: &str,
    minutes: i64,
) -> Result<Message, MailError> {
    let body = format!(
        "Someone asked to reset the password of your VSee Messenger account.\n\n\
         To choose a new password, open this link within {minutes} minutes\n\
         (it works once, and only the newest link works):\n{link}\n\n\
         If it was not you, ignore this email: your password stays as it is.\n"
    );
    plain(
        settings,
        to,
        "Reset your password",
        Some(format!("<notification-{notification_id}@erasure>")),
        body,
    )
}

/// Sent to the old address after the account's email changed, and to the current one after
/// the password changed: the holder learns of a change they did not make.
pub fn account_changed(
    settings: &Settings,
    to: &Email,
    notification_id: &str,
    what: &str,
) -> Result<Message, MailError> {
    let body = format!(
        "The {what} of your VSee Messenger account was just changed.\n\n\
         If you made this change, there is nothing to do.\n\
         If you did not, write to {support} at once: someone else may be using\n\
         your account.\n",
        support = settings.support.email
    );
    plain(
        settings,
        to,
        &format!("Your {what} was changed"),
        Some(format!("<notification-{notification_id}@erasure>")),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn international_domains_are_sent_in_their_ascii_form() {
        let to = Email::parse("anna@bücher.de").unwrap();
        let settings = crate::config::Settings::load_from(&Default::default()).unwrap();
        let message = deletion_confirmation(&settings, &to, "r1", "receipt").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("To: anna@xn--bcher-kva.de"), "{text}");
        assert_eq!(message.envelope().to()[0].to_string(), "anna@xn--bcher-kva.de");
    }

    proptest! {
        /// One grammar: whatever sign-up and profile edits accept, the mailer takes.
        #[test]
        fn every_accepted_address_is_one_the_mailer_takes(
            local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{1,70}",
            labels in proptest::collection::vec("[a-zA-Z0-9ü-]{1,70}", 1..5),
            tld in "[a-z]{2,6}",
        ) {
            let raw = format!("{local}@{}.{tld}", labels.join("."));
            if let Ok(email) = Email::parse(&raw) {
                prop_assert!(recipient(&email).is_ok(), "{raw} accepted but lettre refuses {}", email.to_ascii());
            }
        }
    }
}
