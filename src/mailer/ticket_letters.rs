//! The emails to a ticket's requester: the acknowledgement every new request gets, the link
//! that lets an account's owner confirm a request made in their name, a rejection, a question,
//! an extension. Each is one askama template pair (`admin-ui/templates/mail/ticket.txt` and
//! `.html`, the HTML escaped) filled with the letter's paragraphs, sent as text and HTML
//! alternatives, marked as automatic (RFC 3834) so a well-behaved auto-responder never answers,
//! and threaded under the requester's message.

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::{
    Message,
    message::{
        MultiPart,
        header::{HeaderName, HeaderValue},
    },
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

/// A letter's content, as both templates show it.
#[derive(Debug, Clone, Default)]
pub struct MailContent {
    pub subject: String,
    pub reference: String,
    pub support_email: String,
    /// Paragraphs before the quote and the link.
    pub before: Vec<String>,
    /// Text quoted from an agent (a reason, a question).
    pub quote: Option<String>,
    pub link: Option<MailLink>,
    pub after: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MailLink {
    pub label: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "mail/ticket.txt")]
struct TextMail<'a> {
    mail: &'a MailContent,
}

#[derive(Template)]
#[template(path = "mail/ticket.html")]
struct HtmlMail<'a> {
    mail: &'a MailContent,
}

impl MailContent {
    /// The text and HTML bodies.
    pub fn render(&self) -> Result<(String, String), MailError> {
        let text = TextMail { mail: self }
            .render()
            .map_err(|e| MailError::Build(e.to_string()))?;
        let html = HtmlMail { mail: self }
            .render()
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok((text, html))
    }
}

/// A Message-ID we may copy into our headers: printable ASCII without angle brackets or
/// spaces, of a sensible length. Anything else is left out rather than repaired.
fn threadable(id: &str) -> Option<&str> {
    let fits = !id.is_empty()
        && id.len() <= 250
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fits.then_some(id)
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%-d %B %Y").to_string()
}

impl Mailer {
    fn content(&self, letter: TicketLetter<'_>, subject: &str) -> MailContent {
        MailContent {
            subject: format!("[{}] {subject}", letter.reference),
            reference: letter.reference.to_owned(),
            support_email: self.letterhead.support_email.clone(),
            ..Default::default()
        }
    }

    fn ticket_message(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        mail: &MailContent,
    ) -> Result<Message, MailError> {
        let (text, html) = mail.render()?;
        let mut builder = Message::builder()
            .from(self.letterhead.from.clone())
            .to(recipient(to)?)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<notification-{}@erasure>", letter.notice_id)));
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
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// To the account's registered address: someone asked to close the account; the owner
    /// confirms through the link, or ignores the email and nothing happens.
    pub fn ticket_verification_content(
        &self,
        letter: TicketLetter<'_>,
        link: &str,
        hours: i64,
    ) -> MailContent {
        let reference = letter.reference;
        MailContent {
            before: vec![
                format!(
                    "We received a request to close your VSee Messenger account and delete all its data (reference {reference})."
                ),
                format!(
                    "Anyone can put an address on an email, so we act on the request only once the account's owner confirms it. If you sent it, confirm it within {hours} hours."
                ),
            ],
            link: Some(MailLink {
                label: "Confirm the request".to_owned(),
                url: link.to_owned(),
            }),
            after: vec![
                "The link opens a page with a button; nothing happens until you press it.".to_owned(),
                "If you did not ask for this, ignore this email: your account stays as it is.".to_owned(),
                format!(
                    "We will answer by {}. Please quote {reference} in any reply.",
                    day(letter.due_at)
                ),
            ],
            ..self.content(letter, "Confirm the request to close your account")
        }
    }

    pub fn ticket_verification(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        link: &str,
        hours: i64,
    ) -> Result<Message, MailError> {
        self.ticket_message(to, letter, &self.ticket_verification_content(letter, link, hours))
    }

    /// The acknowledgement: the reference and the date we will answer by. `matched` says
    /// whether the request names an account we can act on.
    pub fn ticket_received_content(&self, letter: TicketLetter<'_>, matched: bool) -> MailContent {
        let reference = letter.reference;
        let due = day(letter.due_at);
        let what = if matched {
            format!(
                "Our support team will process your request to close your VSee Messenger account by {due}."
            )
        } else {
            format!(
                "No VSee Messenger account uses the address you wrote from, so we cannot act on it yet: please reply from the address registered with your account, or tell us its VSee ID. Our support team will answer by {due} (or write to {}).",
                self.letterhead.support_email
            )
        };
        MailContent {
            before: vec![format!("We received your message (reference {reference})."), what],
            after: vec![format!("Please quote {reference} in any reply.")],
            ..self.content(letter, "We received your request")
        }
    }

    pub fn ticket_received(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        matched: bool,
    ) -> Result<Message, MailError> {
        self.ticket_message(to, letter, &self.ticket_received_content(letter, matched))
    }

    /// The request was rejected: why, and the requester's routes if they disagree (GDPR
    /// Art. 12(4): the possibility of a complaint and of a judicial remedy).
    pub fn ticket_rejected_content(&self, letter: TicketLetter<'_>, reason: &str) -> MailContent {
        let reference = letter.reference;
        MailContent {
            before: vec![format!(
                "We have looked at your request {reference} to close a VSee Messenger account, and we cannot carry it out:"
            )],
            quote: Some(reason.to_owned()),
            after: vec![
                format!(
                    "If you disagree, reply to this email (keep {reference} in the subject) or write to {}.",
                    self.letterhead.support_email
                ),
                "You also have the right to lodge a complaint with a data protection supervisory authority, in particular where you live or work, and to seek a judicial remedy.".to_owned(),
            ],
            ..self.content(letter, "Your request was not carried out")
        }
    }

    pub fn ticket_rejected(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        reason: &str,
    ) -> Result<Message, MailError> {
        self.ticket_message(to, letter, &self.ticket_rejected_content(letter, reason))
    }

    /// An agent needs more information; the answer is a reply to this email.
    pub fn ticket_question_content(&self, letter: TicketLetter<'_>, question: &str) -> MailContent {
        let reference = letter.reference;
        MailContent {
            before: vec![format!(
                "About your request {reference} to close a VSee Messenger account, our support team needs to know more:"
            )],
            quote: Some(question.to_owned()),
            after: vec![format!(
                "Please answer by replying to this email (keep {reference} in the subject)."
            )],
            ..self.content(letter, "We need more information")
        }
    }

    pub fn ticket_question(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        question: &str,
    ) -> Result<Message, MailError> {
        self.ticket_message(to, letter, &self.ticket_question_content(letter, question))
    }

    /// The deadline was extended (GDPR Art. 12(3)): the new date and why.
    pub fn ticket_extended_content(&self, letter: TicketLetter<'_>, reason: &str) -> MailContent {
        let reference = letter.reference;
        MailContent {
            before: vec![format!(
                "We need more time to carry out your request {reference} to close a VSee Messenger account. We will answer by {}, because:",
                day(letter.due_at)
            )],
            quote: Some(reason.to_owned()),
            after: vec![format!("Please quote {reference} in any reply.")],
            ..self.content(letter, "We need more time")
        }
    }

    pub fn ticket_extended(
        &self,
        to: &Email,
        letter: TicketLetter<'_>,
        reason: &str,
    ) -> Result<Message, MailError> {
        self.ticket_message(to, letter, &self.ticket_extended_content(letter, reason))
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
        assert!(text.contains("multipart/alternative"), "text and HTML: {text}");
    }

    #[test]
    fn a_rejection_says_why_and_where_to_complain() {
        let (text, _) = mailer()
            .ticket_rejected_content(letter(None), "We could not confirm that you hold the account.")
            .render()
            .unwrap();
        assert!(
            text.contains("> We could not confirm that you hold the account."),
            "{text}"
        );
        assert!(text.contains("supervisory authority"), "{text}");
        let message = mailer()
            .ticket_rejected(&Email::parse("paid@example.com").unwrap(), letter(None), "No.")
            .unwrap();
        let formatted = String::from_utf8(message.formatted()).unwrap();
        assert!(
            formatted.contains("Subject: [T-7K2M9QXA] Your request was not carried out"),
            "{formatted}"
        );
    }

    /// Every letter, as text and as HTML: a change to one shows in review.
    #[test]
    fn every_letter_renders_as_its_snapshot() {
        let m = mailer();
        let l = letter(Some("abc@mail.example"));
        let letters = [
            (
                "verification",
                m.ticket_verification_content(l, "http://127.0.0.1:3000/tickets/verify/TOKEN", 72),
            ),
            ("received_matched", m.ticket_received_content(l, true)),
            ("received_unmatched", m.ticket_received_content(l, false)),
            (
                "rejected",
                m.ticket_rejected_content(l, "We could not confirm <you> hold the account."),
            ),
            (
                "question",
                m.ticket_question_content(l, "Which VSee ID?\nAnd since when?"),
            ),
            (
                "extended",
                m.ticket_extended_content(l, "The billing records are archived."),
            ),
        ];
        for (name, content) in letters {
            let (text, html) = content.render().unwrap();
            insta::assert_snapshot!(format!("{name}_text"), text);
            insta::assert_snapshot!(format!("{name}_html"), html);
        }
    }

    #[test]
    fn html_escapes_what_agents_wrote() {
        let (_, html) = mailer()
            .ticket_rejected_content(letter(None), "<script>alert(1)</script>")
            .render()
            .unwrap();
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
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
