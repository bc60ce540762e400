//! Mail to help@ through the MTA's pipe (`erasure ingest-email`): one ticket per Message-ID,
//! the sender matched to an account, machines ignored, unreadable mail quarantined, and the
//! exit codes an MTA acts on.

use std::{collections::HashMap, io::Write};

use crate::helpers::*;

/// `erasure ingest-email` with `raw` on standard input.
pub(crate) fn ingest(vars: &HashMap<String, String>, raw: &[u8]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
        .arg("ingest-email")
        .env_clear()
        .envs(vars)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A refused oversized message may close the pipe early.
    let _ = stdin.write_all(raw);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn letter(from: &str, message_id: &str, extra_headers: &str) -> String {
    format!(
        "From: {from}\r\nTo: help@vsee.com\r\nSubject: Close my paid account\r\n\
         Message-ID: <{message_id}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n{extra_headers}\r\n\
         Please terminate my subscription and delete everything.\r\n"
    )
}

async fn a_message_opens_one_ticket_matched_to_its_sender(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    let account = app.seed("paid01", "paid@vsee.com", "paid", 0).await;
    let raw = letter("Paid User <PAID@vsee.com>", "first@mail.example", "");
    let out = ingest(&app.vars, raw.as_bytes());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = stdout(&out);
    assert!(
        reference.starts_with("T-") && reference.len() == 10,
        "{reference:?}"
    );
    let row: Vec<String> = app
        .tickets()
        .await
        .iter()
        .filter(|t| t.reference == reference)
        .map(|t| {
            format!(
                "{}|{}|{}|{}",
                t.sender,
                t.account_id.unwrap_or_default(),
                t.status.as_str(),
                t.door.as_str()
            )
        })
        .collect();
    assert_eq!(row, [format!("paid@vsee.com|{}|open|pipe", account.account_id)]);
    // Due a month after it arrived.
    let due_days = app
        .strings(&format!(
            "SELECT CAST(CAST({} AS INTEGER) AS TEXT) FROM tickets WHERE reference = '{reference}'",
            match stack {
                Stack::Sqlite => "julianday(due_at) - julianday(received_at)",
                Stack::Server => "EXTRACT(DAY FROM due_at - received_at)",
            }
        ))
        .await;
    assert_eq!(due_days, ["30"]);

    // The same message again (an MTA retrying, a second door): the same ticket, no other.
    let again = ingest(&app.vars, raw.as_bytes());
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), reference);
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);

    // Nobody's address: a ticket all the same, unmatched, for an agent to link or close.
    let out = ingest(
        &app.vars,
        letter("stranger@elsewhere.example", "second@mail.example", "").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        app.tickets()
            .await
            .iter()
            .filter(|t| t.sender == "stranger@elsewhere.example" && t.account_id.is_none())
            .count(),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE verified_at IS NOT NULL")
            .await,
        0,
        "From is not proof"
    );
}

async fn machines_open_no_ticket(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    for (n, extra) in [
        "Auto-Submitted: auto-replied\r\n",
        "Precedence: bulk\r\n",
        "X-Autoreply: yes\r\n",
        "Return-Path: <>\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let out = ingest(
            &app.vars,
            letter("paid@vsee.com", &format!("auto{n}@mail.example"), extra).as_bytes(),
        );
        assert_eq!(out.status.code(), Some(0), "{extra}");
        assert_eq!(stdout(&out), "", "{extra}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ignored"),
            "{extra}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);
}

async fn unreadable_or_oversized_mail_is_refused_and_opens_nothing(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    let out = ingest(&app.vars, b"this is not an email at all");
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not readable as mail"));
    let out = ingest(&app.vars, b"Subject: nobody sent this\r\n\r\nhello\r\n");
    assert_eq!(out.status.code(), Some(65));
    // Kept, raw, for an admin; no ticket.
    assert_eq!(app.count("SELECT COUNT(*) FROM quarantined_mail").await, 2);
    // With the reason an admin reads, and the bytes sealed under a key per message: not in
    // the database in clear.
    let garbage = b"this is not an email at all";
    assert_eq!(
        app.count("SELECT COUNT(*) FROM quarantined_mail WHERE door = 'pipe' AND reason <> ''")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM quarantined_mail WHERE raw LIKE '%not an email%'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM data_keys WHERE owner LIKE 'quarantine:%'")
            .await,
        2
    );
    // An admin on the host lists them and reads one back exactly as it came.
    let listed = app.cli(&["quarantine", "list"]);
    assert!(listed.status.success());
    let lines = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let oldest = lines.lines().last().unwrap().split('\t').collect::<Vec<_>>();
    assert_eq!((oldest[2], oldest[3]), ("pipe", "27"), "{lines}");
    let shown = app.cli(&["quarantine", "show", oldest[0]]);
    assert_eq!(shown.stdout, garbage);
    assert_eq!(app.cli(&["quarantine", "show", "999999"]).status.code(), Some(2));
    // Aged out (the ingest ran on the real clock): the rows go, and their keys with them.
    erasure::services::tickets::sweep(app.state.env(), chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM quarantined_mail").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM data_keys WHERE owner LIKE 'quarantine:%'")
            .await,
        0
    );

    let mut huge = letter("paid@vsee.com", "huge@mail.example", "").into_bytes();
    huge.resize(10 * 1024 * 1024 + 1, b'x');
    let out = ingest(&app.vars, &huge);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than"));
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);
}

/// The database unreachable: 75, so the MTA keeps the message and tries again.
#[tokio::test]
async fn an_unreachable_database_asks_the_mta_to_try_again() {
    let app = spawn_state_only(Stack::Sqlite, &[]).await;
    let mut vars = app.vars.clone();
    vars.insert(
        "ERASURE_DATABASE__URL".into(),
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=1".into(),
    );
    let out = ingest(
        &vars,
        letter("paid@vsee.com", "later@mail.example", "").as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

crate::on_both_stacks!(
    a_message_opens_one_ticket_matched_to_its_sender,
    machines_open_no_ticket,
    unreadable_or_oversized_mail_is_refused_and_opens_nothing,
);
