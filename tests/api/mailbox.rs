//! The help@ mailbox over IMAP, from a real dovecot: every message taken once, marked seen (or
//! moved) after its ticket is stored, the mailbox's position kept, duplicates and replies as at
//! the other doors, unreadable mail quarantined and not read again.

use std::time::Duration;

use crate::helpers::*;

const WITHIN: Duration = Duration::from_secs(30);

fn message(from: &str, message_id: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: help@vsee.com\r\nSubject: Terminate my account\r\n\
         Message-ID: <{message_id}>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0000\r\n{extra}\r\n\
         Please delete my paid account.\r\n"
    )
}

fn imap_settings<'a>(dovecot_url: &'a str, processed: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("ERASURE_SUPPORT__IMAP__URL", dovecot_url),
        ("ERASURE_SUPPORT__IMAP__USERNAME", IMAP_USER),
        ("ERASURE_SUPPORT__IMAP__PASSWORD", IMAP_PASSWORD),
        ("ERASURE_SUPPORT__IMAP__POLL_INTERVAL_SECS", "1"),
        ("ERASURE_SUPPORT__IMAP__PROCESSED_MAILBOX", processed),
    ]
}

async fn the_mailbox_is_polled_and_marked_after_each_ticket(stack: Stack) {
    let dovecot = Dovecot::start().await;
    // Mail waiting before the service first polls: a request, an auto-reply, and bytes that
    // are not mail.
    dovecot
        .append(
            "INBOX",
            &message("Paid Fifty <paid50@vsee.com>", "imap-1@mail.example", ""),
        )
        .await;
    dovecot
        .append(
            "INBOX",
            &message(
                "paid50@vsee.com",
                "imap-2@mail.example",
                "Auto-Submitted: auto-replied\r\n",
            ),
        )
        .await;
    dovecot.append("INBOX", "not mail at all\r\n").await;
    let url = dovecot.url();
    let app = spawn_on(stack, erasure::startup::Roles::ALL, &imap_settings(&url, "")).await;
    app.seed("paid50", "paid50@vsee.com", "paid", 0).await;

    let cursor =
        "SELECT COUNT(*) FROM mailbox_cursors WHERE mailbox = 'help@127.0.0.1/INBOX' AND last_uid = ";
    app.wait_for_count(&format!("{cursor}3"), 1, WITHIN).await;
    let tickets: Vec<String> = app
        .tickets()
        .await
        .iter()
        .map(|t| format!("{}|{}|{}", t.door.as_str(), t.sender, t.status.as_str()))
        .collect();
    assert_eq!(tickets, ["imap|paid50@vsee.com|open"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM quarantined_mail WHERE door = 'imap'")
            .await,
        1
    );
    // Marked seen on the server, each once its ticket (or quarantine) was stored.
    assert_eq!(dovecot.search("INBOX", "UNSEEN").await, Vec::<u32>::new());
    assert_eq!(dovecot.search("INBOX", "SEEN").await, [1, 2, 3]);
    // The acknowledgement went to the requester.
    app.wait_for_mail(|m| m.contains("To: paid50@vsee.com") && m.contains("T-"))
        .await;

    // Later mail: the same message again, and a reply to it. A message someone opened in a
    // mail client meanwhile is still taken: the cursor, not the flag, says what is new.
    dovecot
        .append("INBOX", &message("paid50@vsee.com", "imap-1@mail.example", ""))
        .await;
    dovecot
        .append(
            "INBOX",
            &message(
                "paid50@vsee.com",
                "imap-reply@mail.example",
                "In-Reply-To: <imap-1@mail.example>\r\n",
            ),
        )
        .await;
    app.wait_for_count(&format!("{cursor}5"), 1, WITHIN).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM ticket_replies").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM quarantined_mail").await, 1);
    assert_eq!(dovecot.search("INBOX", "UNSEEN").await, Vec::<u32>::new());
    // Nothing is taken twice over later polls.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM ticket_replies").await, 1);
}

async fn processed_mail_is_moved_out_of_the_inbox() {
    let dovecot = Dovecot::start().await;
    dovecot.create("Processed").await;
    dovecot
        .append("INBOX", &message("paid51@vsee.com", "imap-51@mail.example", ""))
        .await;
    let url = dovecot.url();
    let app = spawn_on(
        Stack::Sqlite,
        erasure::startup::Roles::ALL,
        &imap_settings(&url, "Processed"),
    )
    .await;
    app.wait_for_count("SELECT COUNT(*) FROM tickets WHERE door = 'imap'", 1, WITHIN)
        .await;
    eventually("the message moved", WITHIN, || async {
        (dovecot.search("Processed", "ALL").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(dovecot.search("INBOX", "ALL").await, Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_imap),
    ignore = "IMAP: set ERASURE_TEST_DOVECOT (.ci/setup installs dovecot-imapd)"
)]
async fn processed_mail_moves_out_of_the_inbox() {
    processed_mail_is_moved_out_of_the_inbox().await;
}

/// Both stacks, as `on_both_stacks!`, when a dovecot is named.
mod the_mailbox_is_polled_and_marked_after_each_ticket {
    use crate::helpers::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(erasure_imap),
        ignore = "IMAP: set ERASURE_TEST_DOVECOT (.ci/setup installs dovecot-imapd)"
    )]
    async fn sqlite() {
        super::the_mailbox_is_polled_and_marked_after_each_ticket(Stack::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(erasure_imap, erasure_server_stack)),
        ignore = "IMAP on the server stack: set ERASURE_TEST_DOVECOT, ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL"
    )]
    async fn server() {
        if server_urls().is_some() {
            super::the_mailbox_is_polled_and_marked_after_each_ticket(Stack::Server).await;
        }
    }
}
