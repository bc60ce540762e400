//! The emails erasure sends, built on the mailer's letterhead. Each has a Message-ID derived
//! from what it is about, so a retried send is recognisably the same message.

use lettre::{
    Message,
    message::{Mailbox, header::ContentType},
};

use super::{MailError, Mailer, mailbox};
use crate::domain::Email;

/// A recipient as SMTP and the `To:` header carry it: the domain in its ASCII form.
pub(super) fn recipient(to: &Email) -> Result<Mailbox, MailError> {
    mailbox(to.to_ascii())
}

/// The stored form of an address, parsed again before sending: an address stored before
/// the grammar was narrowed may be one the mailer cannot take, which is permanent.
pub fn stored_address(raw: &str) -> Result<Email, MailError> {
    Email::parse(raw).map_err(|e| MailError::Build(e.to_string()))
}

impl Mailer {
    fn plain(
        &self,
        to: &Email,
        subject: &str,
        message_id: String,
        body: String,
    ) -> Result<Message, MailError> {
        Message::builder()
            .from(self.letterhead.from.clone())
            .to(recipient(to)?)
            .subject(subject)
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// "Your account has been deleted", with the receipt.
    pub fn deletion_confirmation(
        &self,
        to: &Email,
        request_id: &str,
        receipt: &str,
    ) -> Result<Message, MailError> {
        let status_url = self.link(&format!("/deletions/{receipt}"));
        let proof_url = self.link(&format!("/api/v1/deletions/{receipt}/proof"));
        let body = format!(
            "Your VSee Messenger account has been deleted, together with all the data\n\
             associated with it. Thank you for using our service!\n\n\
             Deletion receipt: {receipt}\n\n\
             You can check the record of this deletion at:\n{status_url}\n\n\
             Your signed erasure receipt, a proof you can keep and anyone can check\n\
             with our published key (available a moment after this email):\n{proof_url}\n\n\
             If you did not ask for this, or have questions, please contact our support\n\
             at {support}.\n",
            support = self.letterhead.support_email
        );
        self.plain(
            to,
            "Your account has been deleted",
            format!("<deletion-{request_id}@erasure>"),
            body,
        )
    }

    /// "Your account will be deleted on …", with the one-time link that cancels it.
    pub fn deletion_scheduled(
        &self,
        to: &Email,
        notification_id: &str,
        purge_after: chrono::DateTime<chrono::Utc>,
        cancel_link: &str,
    ) -> Result<Message, MailError> {
        let when = purge_after.format("%Y-%m-%d %H:%M UTC");
        let body = format!(
            "You asked us to delete your VSee Messenger account. You can no longer log in,\n\
             and your account and all the data associated with it will be permanently\n\
             deleted on {when}.\n\n\
             Changed your mind? Until then, this link cancels the deletion and lets you\n\
             log in again (it works once):\n{cancel_link}\n\n\
             If you did not ask for this, open the link and write to our support at\n\
             {support}.\n",
            support = self.letterhead.support_email
        );
        self.plain(
            to,
            &format!(
                "Your account will be deleted on {}",
                purge_after.format("%Y-%m-%d")
            ),
            format!("<notification-{notification_id}@erasure>"),
            body,
        )
    }

    /// "Your data is ready to download", with the page that serves it to the logged-in holder.
    pub fn export_ready(
        &self,
        to: &Email,
        notification_id: &str,
        link: &str,
        ttl: chrono::Duration,
    ) -> Result<Message, MailError> {
        let hours = ttl.num_hours();
        let body = format!(
            "The archive of your VSee Messenger data you asked for is ready: your profile,\n\
             messages, contacts, calls and devices as JSON, and your picture, in one ZIP file.\n\n\
             Log in and download it here within {hours} hours (it is then removed):\n{link}\n\n\
             If you did not ask for it, change your password and write to {support}.\n",
            support = self.letterhead.support_email
        );
        self.plain(
            to,
            "Your data is ready to download",
            format!("<notification-{notification_id}@erasure>"),
            body,
        )
    }

    pub fn password_reset(
        &self,
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
        self.plain(
            to,
            "Reset your password",
            format!("<notification-{notification_id}@erasure>"),
            body,
        )
    }

    /// To the old address after the account's email changed, and to the current one after
    /// the password or the notification address changed: the holder learns of a change they
    /// did not make.
    pub fn account_changed(
        &self,
        to: &Email,
        notification_id: &str,
        what: &str,
    ) -> Result<Message, MailError> {
        let body = format!(
            "The {what} of your VSee Messenger account was just changed.\n\n\
             If you made this change, there is nothing to do.\n\
             If you did not, write to {support} at once: someone else may be using\n\
             your account.\n",
            support = self.letterhead.support_email
        );
        self.plain(
            to,
            &format!("Your {what} was changed"),
            format!("<notification-{notification_id}@erasure>"),
            body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mailer() -> Mailer {
        let settings = crate::config::Settings::load_from(&Default::default()).unwrap();
        Mailer::from_settings(&settings).unwrap()
    }

    #[test]
    fn international_domains_are_sent_in_their_ascii_form() {
        let to = Email::parse("anna@bücher.de").unwrap();
        let message = mailer().deletion_confirmation(&to, "r1", "receipt").unwrap();
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
