//! The emails about tickets: the acknowledgement every new request gets, and the link that
//! lets an account's owner confirm a request made in their name. Both are marked as automatic
//! (RFC 3834), so a well-behaved auto-responder never answers them, and thread under the
//! requester's message.

use chrono::{DateTime, Utc};
use lettre::{
    Message,
    message::header::{ContentType, HeaderName, HeaderValue},
};

use super::{MailError, Mailer, letters::recipient};
use crate::domain::Email;

/// What a ticket's email is about.
#[derive(Debug, Clone, Copy)]
pub struct TicketLetter<'a> {
    /// The notice that sends it; the Message-ID derives from it.
    pub notice_id: &'a str,
    pub reference: &'a str,
    pub due_at: DateTime<Utc>,
    /// The requester's Message-ID, when they wrote to us.
    pub in_reply_to: Option<&'a str>,
}

/// A Message-ID we may copy into our headers: printable ASCII without angle brackets or
/// spaces, of a sensible length. Anything else is left out rather than repaired.
fn threadable(id: &str) -> Option<&str> {
    let fits = !id.is_empty()
        && id.len() <= 250
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fits.then_some(id)
}

impl Mailer {
    fn ticket_message(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        subject: &str,
        body: String,
    ) -> Result<Message, MailError> {
        let mut builder = Message::builder()
            .from(self.letterhead.from.clone())
            .to(recipient(to)?)
            .subject(format!("[{}] {subject}", letter.reference))
            .message_id(Some(format!("<notification-{}@erasure>", letter.notice_id)))
            .header(ContentType::TEXT_PLAIN);
        let automatic = match letter.in_reply_to.and_then(threadable) {
            Some(id) => {
                builder = builder
                    .in_reply_to(format!("<{id}>"))
                    .references(format!("<{id}>"));
                "auto-replied"
            }
            None => "auto-generated",
        };
        builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                automatic.to_owned(),
            ))
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// To the account's registered address: someone asked to close the account; the owner
    /// confirms through the link, or ignores the email and nothing happens.
    pub fn ticket_verification(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        link: &str,
        hours: i64,
    ) -> Result<Message, MailError> {
        let body = format!(
            "We received a request to close your VSee Messenger account and delete all\n\
             its data (reference {reference}).\n\n\
             Anyone can put an address on an email, so we act on the request only once\n\
             the account's owner confirms it. If you sent it, confirm it within {hours} hours:\n\
             {link}\n\n\
             The link opens a page with a button; nothing happens until you press it.\n\n\
             If you did not ask for this, ignore this email: your account stays as it is.\n\n\
             We will answer by {due}. Please quote {reference} in any reply.\n",
            reference = letter.reference,
            due = letter.due_at.format("%-d %B %Y"),
        );
        self.ticket_message(to, letter, "Confirm the request to close your account", body)
    }

    /// The acknowledgement: the reference and the date we will answer by. `matched` says
    /// whether the request names an account we can act on.
    pub fn ticket_received(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        matched: bool,
    ) -> Result<Message, MailError> {
        let what = if matched {
            "Our support team will process your request to close your VSee Messenger\n\
             account"
                .to_owned()
        } else {
            format!(
                "No VSee Messenger account uses the address you wrote from, so we cannot\n\
                 act on it yet: please reply from the address registered with your\n\
                 account, or tell us its VSee ID. Our support team will answer\n\
                 (or write to {support})",
                support = self.letterhead.support_email
            )
        };
        let body = format!(
            "We received your message (reference {reference}).\n\n\
             {what} by {due}.\n\n\
             Please quote {reference} in any reply.\n",
            reference = letter.reference,
            due = letter.due_at.format("%-d %B %Y"),
        );
        self.ticket_message(to, letter, "We received your request", body)
    }
}

impl Mailer {
    /// The request was rejected: why, and the requester's routes if they disagree (GDPR
    /// Art. 12(4): the possibility of a complaint and of a judicial remedy).
    pub fn ticket_rejected(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        reason: &str,
    ) -> Result<Message, MailError> {
        let body = format!(
            "We have looked at your request {reference} to close a VSee Messenger account,\n\
             and we cannot carry it out:\n\n{reason}\n\n\
             If you disagree, reply to this email (keep {reference} in the subject) or write\n\
             to {support}. You also have the right to lodge a complaint with a data\n\
             protection supervisory authority, in particular where you live or work, and to\n\
             seek a judicial remedy.\n",
            reference = letter.reference,
            support = self.letterhead.support_email,
        );
        self.ticket_message(to, letter, "Your request was not carried out", body)
    }

    /// An agent needs more information; the answer is a reply to this email.
    pub fn ticket_question(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        question: &str,
    ) -> Result<Message, MailError> {
        let body = format!(
            "About your request {reference} to close a VSee Messenger account, our support\n\
             team needs to know more:\n\n{question}\n\n\
             Please answer by replying to this email (keep {reference} in the subject).\n",
            reference = letter.reference,
        );
        self.ticket_message(to, letter, "We need more information", body)
    }

    /// The deadline was extended (GDPR Art. 12(3)): the new date and why.
    pub fn ticket_extended(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        reason: &str,
    ) -> Result<Message, MailError> {
        let body = format!(
            "We need more time to carry out your request {reference} to close a VSee\n\
             Messenger account. We will answer by {due}, because:\n\n{reason}\n\n\
             Please quote {reference} in any reply.\n",
            reference = letter.reference,
            due = letter.due_at.format("%-d %B %Y"),
        );
        self.ticket_message(to, letter, "We need more time", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        let settings = crate::config::Settings::load_from(&Default::default()).unwrap();
        Mailer::from_settings(&settings).unwrap()
    }

    fn letter(in_reply_to: Option<&'static str>) -> TicketLetter<'static> {
        TicketLetter {
            notice_id: "n1",
            reference: "T-7K2M9QXA",
            due_at: DateTime::parse_from_rfc3339("2026-12-29T10:00:00Z")
                .unwrap()
                .to_utc(),
            in_reply_to,
        }
    }

    #[test]
    fn replies_thread_under_the_request_and_say_they_are_automatic() {
        let to = Email::parse("paid@example.com").unwrap();
        let message = mailer()
            .ticket_verification(
                &to,
                letter(Some("abc@mail.example")),
                "http://x/tickets/verify/t",
                72,
            )
            .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("In-Reply-To: <abc@mail.example>"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("Subject: [T-7K2M9QXA] Confirm"), "{text}");
        assert!(text.contains("http://x/tickets/verify/t"), "{text}");
        assert!(text.contains("29 December 2026"), "{text}");
    }

    #[test]
    fn a_rejection_says_why_and_where_to_complain() {
        let to = Email::parse("paid@example.com").unwrap();
        let message = mailer()
            .ticket_rejected(
                &to,
                letter(None),
                "We could not confirm that you hold the account.",
            )
            .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Subject: [T-7K2M9QXA] Your request was not carried out"),
            "{text}"
        );
        assert!(
            text.contains("We could not confirm that you hold the account."),
            "{text}"
        );
        assert!(text.contains("supervisory authority"), "{text}");
    }

    #[test]
    fn an_id_that_is_not_one_is_left_out() {
        let to = Email::parse("paid@example.com").unwrap();
        for id in ["a b@c", "a>\r\nBcc: x@y@z", ""] {
            let message = mailer().ticket_received(&to, letter(Some(id)), false).unwrap();
            let text = String::from_utf8(message.formatted()).unwrap();
            assert!(!text.contains("In-Reply-To"), "{text}");
            assert!(!text.contains("Bcc"), "{text}");
            assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
        }
    }
}
