//! What is known of a message's sender (DKIM, SPF and DMARC, checked offline against records
//! pinned in configuration, with a key made by the test), merging duplicate tickets, the
//! subscription an approval cancels, and the regulatory clock's daily job.

use base64::Engine as _;
use erasure::clock::Clock;
use mail_auth::{
    common::{crypto::Ed25519Key, headers::HeaderWriter},
    dkim::DkimSigner,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    intake::ingest,
    staff::{STAFF_PASSWORD, staff_device, staff_log_in},
    tickets::ticket_from,
};

/// A key pair, and the configuration that publishes its public half (and SPF and DMARC
/// records) for example.test, as DNS would.
fn dns_for_example_test() -> (Ed25519Key, String) {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    let records = format!(
        "sel._domainkey.example.test v=DKIM1; k=ed25519; p={public}\n\
         example.test v=spf1 ip4:192.0.2.1 -all\n\
         _dmarc.example.test v=DMARC1; p=reject\n\
         _dmarc.test NXDOMAIN\n"
    );
    (key, records)
}

fn letter(message_id: &str, relay_ip: &str) -> String {
    format!(
        "Received: from mx.example.test (mx.example.test [{relay_ip}]) by mx.vsee.com with ESMTPS id q1; \
         Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         Return-Path: <paid40@example.test>\r\n\
         From: Paid Forty <paid40@example.test>\r\nTo: help@vsee.com\r\nSubject: Close my account\r\n\
         Message-ID: <{message_id}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\n\
         Please end my subscription and delete my account.\r\n"
    )
}

fn signed(key: Ed25519Key, raw: &str) -> String {
    let signature = DkimSigner::from_key(key)
        .domain("example.test")
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID", "Date"])
        .sign(raw.as_bytes())
        .unwrap();
    format!("{}{raw}", signature.to_header())
}

/// The ticket `raw` opens, and what was checked of its sender.
async fn checks_of(app: &TestApp, agent: &Device, raw: &str) -> (i64, Value) {
    let out = ingest(&app.vars, raw.as_bytes());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let found = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await;
    let id = found[0]["id"].as_i64().unwrap();
    let detail = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    // Whatever DNS says, From is not proof: only the owner's link or an agent verifies.
    assert_eq!(detail["verified"], false);
    (id, detail["sender_authentication"].clone())
}

async fn dkim_spf_and_dmarc_are_recorded_for_the_agent(stack: Stack) {
    let (key, records) = dns_for_example_test();
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_SUPPORT__MAIL_AUTH__PINNED_TXT", records.as_str())],
    )
    .await;
    app.seed("paid40", "paid40@example.test", "paid", 0).await;
    let agent = staff_device(&app, "agent").await;

    // Signed by the domain, relayed by its server: all three pass.
    let intact = signed(key, &letter("dkim-pass@example.test", "192.0.2.1"));
    let (signed_id, checks) = checks_of(&app, &agent, &intact).await;
    assert_eq!(
        checks,
        json!({ "dkim": "pass", "dkim_domain": "example.test", "spf": "pass", "dmarc": "pass" })
    );

    // The same signature over a changed subject, from a server the domain does not list.
    let (other_key, _) = dns_for_example_test();
    let forged = signed(other_key, &letter("dkim-fail@example.test", "198.51.100.7"))
        .replace("Subject: Close my account", "Subject: Close my account now");
    assert_eq!(
        checks_of(&app, &agent, &forged).await.1,
        json!({ "dkim": "fail", "dkim_domain": null, "spf": "fail", "dmarc": "fail" })
    );

    // Unsigned, with no relay on record: nothing to check but the domain's policy.
    let bare = letter("unsigned@example.test", "192.0.2.1")
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\r\n");
    assert_eq!(
        checks_of(&app, &agent, &bare).await.1,
        json!({ "dkim": "none", "dkim_domain": null, "spf": "none", "dmarc": "fail" })
    );

    // A domain nobody pinned, and no DNS to ask: temperror, and the ticket is made anyway.
    let elsewhere = letter("elsewhere@mail.example", "192.0.2.1").replace("example.test", "mail.example");
    let (_, unknown) = checks_of(&app, &agent, &elsewhere).await;
    assert_eq!(unknown["dkim"], "none");
    assert_eq!(unknown["spf"], "temperror");

    // The agent sees them on the ticket page.
    let (status, page) = agent.get_page(&format!("/staff/tickets/{signed_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Sender checks"), "{page}");
    assert!(
        page.contains("DKIM pass (signed by example.test), SPF pass, DMARC pass"),
        "{page}"
    );
}

async fn duplicates_merge_into_the_ticket_they_repeat(stack: Stack) {
    let app = spawn_app_without_workers(stack).await;
    app.seed("paid41", "paid41@vsee.com", "paid", 0).await;
    let agent = staff_device(&app, "agent").await;
    let (kept, kept_ref) = ticket_from(&app, &agent, "paid41@vsee.com", "first-41@mail.example").await;
    let (dup, dup_ref) = ticket_from(&app, &agent, "paid41@vsee.com", "second-41@mail.example").await;
    let merge = format!("/api/v1/tickets/{dup}/merge");
    let entries = "SELECT COUNT(*) FROM ledger_entries";
    let before = app.count(entries).await;

    // Bad input changes nothing.
    for (body, status) in [
        (json!({ "into": "T-ZZZZZZZZ", "reason": "same person" }), 422),
        (json!({ "into": dup_ref, "reason": "same person" }), 422),
        (json!({ "into": kept_ref, "reason": " " }), 422),
        (json!({ "into": "nonsense", "reason": "same person" }), 422),
    ] {
        let r = agent.post_json(&merge, body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
    }
    assert_eq!(app.count(entries).await, before);

    let r = agent
        .post_json(
            &merge,
            json!({ "into": kept_ref.to_lowercase(), "reason": "wrote twice" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], kept);
    let merged = agent.get_json(&format!("/api/v1/tickets/{dup}")).await;
    assert_eq!(
        (merged["status"].as_str(), merged["merged_into_id"].as_i64()),
        (Some("closed"), Some(kept))
    );
    let detail = agent.get_json(&format!("/api/v1/tickets/{kept}")).await;
    let subjects: Vec<&str> = detail["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, [format!("[{dup_ref}] Terminate")]);
    assert_eq!(
        app.strings("SELECT event FROM ledger_entries ORDER BY seq DESC LIMIT 1")
            .await,
        ["ticket_merged"]
    );

    // Once merged, again is a conflict; a reply to the duplicate joins the kept ticket.
    let again = agent
        .post_json(&merge, json!({ "into": kept_ref, "reason": "again" }))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let reply = "From: paid41@vsee.com\r\nTo: help@vsee.com\r\nSubject: Re: Terminate\r\n\
                 Message-ID: <reply-41@mail.example>\r\nIn-Reply-To: <second-41@mail.example>\r\n\r\nAny news?\r\n";
    let out = ingest(&app.vars, reply.as_bytes());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), kept_ref);
    assert_eq!(
        agent.get_json(&format!("/api/v1/tickets/{kept}")).await["replies"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Into a merged ticket: refused, named.
    let (third, _) = ticket_from(&app, &agent, "paid41@vsee.com", "third-41@mail.example").await;
    let (status, code) = error_code(
        agent
            .post_json(
                &format!("/api/v1/tickets/{third}/merge"),
                json!({ "into": dup_ref, "reason": "same" }),
            )
            .await,
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (409, "conflict"));

    // Approving the kept ticket cancels the subscription in the same transaction.
    let r = agent
        .post_json(
            &format!("/api/v1/tickets/{kept}/verification"),
            json!({ "reason": "called back" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled = format!(
        "SELECT COUNT(*) FROM accounts WHERE {} AND subscription_cancelled_at IS NOT NULL",
        app.account_is("paid41")
    );
    assert_eq!(app.count(&cancelled).await, 0);
    let r = agent
        .post_json(&format!("/api/v1/tickets/{kept}/approval"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // No workers here: the account is still there to be looked at.
    assert_eq!(app.count(&cancelled).await, 1);
    let (_, page) = agent.get_page(&format!("/staff/tickets/{kept}")).await;
    assert!(page.contains("billing stopped"), "{page}");
}

async fn the_clock_is_read_once_a_day(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        // Every second, so the test need not wait for midnight; the day is the app's clock's.
        &[("ERASURE_SUPPORT__CLOCK_SCHEDULE", "* * * * * *")],
    )
    .await;
    let agent = staff_device(&app, "agent").await;
    let today = app.clock.now().format("%Y-%m-%d").to_string();
    // Read at start, before any ticket.
    app.wait_for_count(
        &format!("SELECT COUNT(*) FROM ticket_clock_days WHERE day = '{today}' AND open = 0"),
        1,
        std::time::Duration::from_secs(20),
    )
    .await;
    ticket_from(&app, &agent, "someone@elsewhere.example", "clock-1@mail.example").await;
    // Ticks later the same day change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM ticket_clock_days").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM ticket_clock_days WHERE day = '{today}' AND open = 0"
        ))
        .await,
        1
    );

    // 25 days on: the next day's reading has it due soon; 31 days on, overdue.
    app.clock.advance(chrono::Duration::days(25));
    let day = app.clock.now().format("%Y-%m-%d").to_string();
    app.wait_for_count(
        &format!("SELECT COUNT(*) FROM ticket_clock_days WHERE day = '{day}' AND open = 1 AND due_soon = 1"),
        1,
        std::time::Duration::from_secs(20),
    )
    .await;
    app.clock.advance(chrono::Duration::days(6));
    let day = app.clock.now().format("%Y-%m-%d").to_string();
    app.wait_for_count(
        &format!("SELECT COUNT(*) FROM ticket_clock_days WHERE day = '{day}' AND overdue = 1"),
        1,
        std::time::Duration::from_secs(20),
    )
    .await;
    let metrics = app
        .device()
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("erasure_ticket_clock{status=\"overdue\"} 1"),
        "{text}"
    );
    // A month on, the agent's session has long expired: they log in again.
    let agent = app.device();
    let r = staff_log_in(&agent, "agent@staff.example", STAFF_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, page) = agent.get_page("/staff/tickets").await;
    assert!(page.contains(&format!("Daily reading of {day}")), "{page}");
}

async fn admins_download_quarantined_mail(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let raw = b"\x00\x01 not mail <script>alert(1)</script>";
    let out = ingest(&app.vars, raw);
    assert_eq!(out.status.code(), Some(65));
    let agent = staff_device(&app, "agent").await;
    let admin = staff_device(&app, "admin").await;
    let r = agent
        .client
        .get(agent.url("/api/v1/quarantine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let list = admin.get_json("/api/v1/quarantine").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (list[0]["door"].as_str(), list[0]["bytes"].as_i64()),
        (Some("pipe"), Some(raw.len() as i64))
    );
    let id = list[0]["id"].as_i64().unwrap();
    let r = admin
        .client
        .get(admin.url(&format!("/api/v1/quarantine/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A download, never a page: whatever the bytes say, the browser does not render them.
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(&r.bytes().await.unwrap()[..], raw);
    let r = admin
        .client
        .get(admin.url("/api/v1/quarantine/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

crate::on_both_stacks!(
    admins_download_quarantined_mail,
    dkim_spf_and_dmarc_are_recorded_for_the_agent,
    duplicates_merge_into_the_ticket_they_repeat,
    the_clock_is_read_once_a_day,
);
