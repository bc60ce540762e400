//! Paid terminations end to end: a signed message to the webhook, its acknowledgement, the
//! link that lets the account's owner confirm it, an agent's approval, and the deletion; the
//! in-app door a logged-in paid user takes; and everything that must be refused on the way.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{helpers::*, staff::staff_device};

const SECRET: &str = "test-inbound-secret";

/// The header a provider sends, computed here independently of the server's code.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn letter(from: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: help@vsee.com\r\nSubject: Please terminate my subscription\r\n\
         Message-ID: <{message_id}>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn deliver(device: &Device, raw: &[u8], signature: Option<&str>) -> reqwest::Response {
    let mut request = device
        .client
        .post(device.url("/api/v1/inbound/email"))
        .header("content-type", "message/rfc822")
        .body(raw.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Erasure-Signature", signature);
    }
    request.send().await.unwrap()
}

/// Sends only the headers of a message of `length` bytes to the webhook; the server's answer.
async fn declare_body(address: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/inbound/email HTTP/1.1\r\nHost: x\r\nContent-Type: message/rfc822\r\n\
         X-Erasure-Signature: sha256=00\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

async fn post(device: &Device, path: &str, body: Value) -> reqwest::Response {
    device.post_json(path, body).await
}

/// The confirmation link's token in a (decoded) email.
fn verification_token(eml: &str) -> String {
    let start = eml.find("/tickets/verify/").expect("the email has a link") + "/tickets/verify/".len();
    eml[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn spawn_with_webhook(stack: Stack) -> TestApp {
    spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_SUPPORT__INBOUND_SECRET", SECRET)],
    )
    .await
}

async fn a_signed_message_is_confirmed_by_the_owner_then_approved(stack: Stack) {
    let app = spawn_with_webhook(stack).await;
    let account = app.seed("paid10", "paid10@vsee.com", "paid", 3).await;
    let provider = app.device();
    let raw = letter(
        "Paid Ten <paid10@vsee.com>",
        "close-10@mail.example",
        "Please close it.",
    );

    // Unsigned, wrongly signed, or signed for another body: 401, and nothing is stored.
    for bad in [
        None,
        Some("sha256=00".to_owned()),
        Some(signature("another-secret", &raw)),
        Some(signature(SECRET, b"another body")),
    ] {
        let (status, code) = error_code(deliver(&provider, &raw, bad.as_deref()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "signature_invalid"),
            "{bad:?}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM quarantined_mail").await, 0);

    let signed = signature(SECRET, &raw);
    let r = deliver(&provider, &raw, Some(&signed)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let opened: Value = r.json().await.unwrap();
    assert_eq!(opened["outcome"], "opened");
    let reference = opened["reference"].as_str().unwrap().to_owned();
    // The provider retries: the same ticket.
    let again: Value = deliver(&provider, &raw, Some(&signed))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["outcome"].as_str(), again["reference"].as_str()),
        (Some("duplicate"), Some(reference.as_str()))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE door = 'webhook'")
            .await,
        1
    );

    // The owner is asked at the account's address, in a reply to their message.
    let eml = app
        .wait_for_mail(|eml| eml.contains("Confirm the request") && eml.contains(&reference))
        .await;
    assert!(eml.contains("To: paid10@vsee.com"), "{eml}");
    assert!(eml.contains("In-Reply-To: <close-10@mail.example>"), "{eml}");
    assert!(eml.contains("Auto-Submitted: auto-replied"), "{eml}");
    let token = verification_token(&eml);

    // Not verified yet: no approval.
    let agent = staff_device(&app, "agent").await;
    let listed = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await;
    let id = listed[0]["id"].as_i64().unwrap();
    let approval = format!("/api/v1/tickets/{id}/approval");
    let (status, code) = error_code(post(&agent, &approval, json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ticket_unverified")
    );

    // Opening the link (as a mail scanner does) changes nothing.
    let owner = app.device();
    let page = format!("/tickets/verify/{token}");
    let (status, html) = owner.get_page(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("YES, CLOSE MY ACCOUNT") && html.contains(&reference),
        "{html}"
    );
    assert_eq!(
        agent.get_json(&format!("/api/v1/tickets/{id}")).await["verified"],
        false
    );
    // A made-up link is not found.
    let (status, _) = owner
        .get_page(&format!("/tickets/verify/{}", "x".repeat(43)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let csrf = csrf_token(&html);
    let press = || async {
        owner
            .client
            .post(owner.url(&page))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    };
    let r = press().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("is confirmed"));
    let ticket = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["verified"], true);
    // Pressing again (a second tab) changes nothing more.
    let r = press().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("is confirmed"));

    let r = post(&agent, &approval, json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_status(&receipt, "completed").await;
    app.wait_for_mail(|eml| eml.contains("Your account has been deleted") && eml.contains("paid10@vsee.com"))
        .await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM accounts WHERE id = {}",
            account.account_id
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM deletion_requests WHERE actor_kind = 'agent' AND channel = 'support'"
        )
        .await,
        1
    );
    // The ledger tells the story: confirmed by the account holder, approved by the agent (by
    // staff id), then the deletion; every entry is chained and verifies.
    let staff_id = app
        .strings("SELECT CAST(id AS TEXT) FROM staff WHERE email = 'agent@staff.example'")
        .await
        .remove(0);
    let entries: Vec<Value> = app
        .strings("SELECT body FROM ledger_entries ORDER BY seq")
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let story: Vec<_> = entries
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}",
                e["event"].as_str().unwrap(),
                e["actor"]["kind"].as_str().unwrap(),
                e["actor"]["id"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        story,
        [
            "ticket_verified|account_holder|-".to_owned(),
            format!("ticket_approved|agent|{staff_id}"),
            format!("account_deleted|agent|{staff_id}"),
        ]
    );
    assert_eq!(entries[1]["key"], reference.as_str());
    assert_eq!(
        entries[1]["subjects"], entries[2]["subjects"],
        "the same person, by pseudonym"
    );
    let body = app.strings("SELECT body FROM ledger_entries").await.join("\n");
    assert!(
        !body.contains("paid10") && !body.contains("vsee.com"),
        "no identifier in clear: {body}"
    );
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // The ticket went with the account: its record stays, its personal content does not.
    let ticket = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(
        (ticket["sender"].as_str(), ticket["body"].as_str()),
        (Some("(erased)"), Some(""))
    );
    assert_eq!(ticket["status"], "approved");
    assert_eq!(entries[2]["data"]["rows_removed"]["tickets"], 1);
}

async fn links_expire_and_strangers_get_no_link(stack: Stack) {
    let app = spawn_with_webhook(stack).await;
    app.seed("paid11", "paid11@vsee.com", "paid", 0).await;
    let provider = app.device();
    for (from, id) in [
        ("paid11@vsee.com", "late@mail.example"),
        ("stranger@elsewhere.example", "who@mail.example"),
    ] {
        let raw = letter(from, id, "Close my account.");
        let r = deliver(&provider, &raw, Some(&signature(SECRET, &raw))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Nobody's address: an acknowledgement that asks for the registered one, and no link.
    let eml = app
        .wait_for_mail(|eml| eml.contains("To: stranger@elsewhere.example"))
        .await;
    assert!(
        eml.contains("No VSee Messenger account uses the address"),
        "{eml}"
    );
    assert!(!eml.contains("/tickets/verify/"), "{eml}");

    let eml = app.wait_for_mail(|eml| eml.contains("To: paid11@vsee.com")).await;
    let page = format!("/tickets/verify/{}", verification_token(&eml));
    let owner = app.device();
    // Opened before the link expires, confirmed after: refused, and the ticket stays unverified.
    let (_, html) = owner.get_page(&page).await;
    let token = csrf_token(&html);
    app.clock.advance(chrono::Duration::hours(73));
    let r = owner
        .client
        .post(owner.url(&page))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("no longer works"));
    let (status, html) = owner.get_page(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("no longer works") && !html.contains("YES, CLOSE"),
        "{html}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE verified_at IS NOT NULL")
            .await,
        0
    );
}

async fn the_webhook_takes_a_whole_message_and_no_more(stack: Stack) {
    let app = spawn_with_webhook(stack).await;
    let provider = app.device();
    // Larger than the API's usual limit, well within a message's.
    let attachment = "a".repeat(300 * 1024);
    let raw = letter("big@elsewhere.example", "big@mail.example", &attachment);
    let r = deliver(&provider, &raw, Some(&signature(SECRET, &raw))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Other operations keep theirs.
    let r = provider
        .client
        .post(provider.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Over 10 MiB: refused on its Content-Length, before a byte of it is read.
    let answer = declare_body(&app.address, 10 * 1024 * 1024 + 1).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Not mail: 422, kept for an admin, no ticket.
    let junk = b"\x00\x01 not a message".to_vec();
    let (status, code) = error_code(deliver(&provider, &junk, Some(&signature(SECRET, &junk))).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM quarantined_mail").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);
}

async fn replies_join_the_ticket_they_answer(stack: Stack) {
    let app = spawn_with_webhook(stack).await;
    app.seed("paid14", "paid14@vsee.com", "paid", 0).await;
    let provider = app.device();
    let send = |raw: Vec<u8>| {
        let provider = &provider;
        async move {
            let r = deliver(provider, &raw, Some(&signature(SECRET, &raw))).await;
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, opened) = send(letter("paid14@vsee.com", "first-14@mail.example", "Close it.")).await;
    assert_eq!(status, StatusCode::CREATED);
    let reference = opened["reference"].as_str().unwrap().to_owned();
    let eml = app.wait_for_mail(|eml| eml.contains(&reference)).await;
    let ours = eml
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("our email has a Message-ID")
        .trim()
        .to_owned();

    // A reply to our email, and one that only quotes the reference (from another address).
    let reply = format!(
        "From: paid14@vsee.com\r\nSubject: Re: [{reference}] Confirm\r\nMessage-ID: <reply-14@mail.example>\r\n\
         In-Reply-To: {ours}\r\nReferences: <first-14@mail.example> {ours}\r\n\r\nI cannot open the link.\r\n"
    );
    let quoted = format!(
        "From: other@elsewhere.example\r\nSubject: about {reference}\r\nMessage-ID: <quote-14@mail.example>\r\n\r\nSame person, other address.\r\n"
    );
    for raw in [reply.clone(), quoted, reply] {
        let (status, answer) = send(raw.into_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            (answer["outcome"].as_str(), answer["reference"].as_str()),
            (Some("attached"), Some(reference.as_str()))
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 1);
    let agent = staff_device(&app, "agent").await;
    let id = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await[0]["id"]
        .as_i64()
        .unwrap();
    let ticket = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    let replies = ticket["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 2, "{ticket}");
    assert_eq!(
        replies[0]["body"].as_str().unwrap().trim(),
        "I cannot open the link."
    );
    assert_eq!(replies[1]["sender"], "other@elsewhere.example");
    assert_eq!(ticket["verified"], false, "a reply verifies nothing");
    let (_, html) = agent.get_page(&format!("/staff/tickets/{id}")).await;
    assert!(html.contains("Same person, other address."), "{html}");
    // Replies are not acknowledged: only the first message was.
    app.wait_for_notices().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE ticket_id IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn without_a_secret_the_webhook_is_off() {
    let app = spawn_app().await;
    let raw = letter("paid@vsee.com", "off@mail.example", "hi");
    for signed in [signature("", &raw), signature(SECRET, &raw)] {
        let (status, code) = error_code(deliver(&app.device(), &raw, Some(&signed)).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "signature_invalid")
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);
}

async fn a_paid_user_requests_termination_in_the_app(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid12", "paid12@vsee.com", "paid", 2).await;
    let user = app.device();
    assert_eq!(user.log_in("paid12", PASSWORD).await.status(), StatusCode::OK);
    let path = "/api/v1/me/termination-request";
    let (status, _) = error_code(user.client.get(user.url(path)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The page says why there is no DELETE MY ACCOUNT, and offers the request.
    let (status, html) = user.get_page("/account/delete").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("REQUEST TERMINATION") && html.contains("subscription"),
        "{html}"
    );

    // The typed email must be the account's; a wrong one changes nothing.
    let (status, code) =
        error_code(post(&user, path, json!({ "confirm_email": "other@vsee.com" })).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "confirmation_mismatch")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);

    let r = post(&user, path, json!({ "confirm_email": "PAID12@vsee.com" })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let asked: Value = r.json().await.unwrap();
    assert_eq!(
        (asked["status"].as_str(), asked["verified"].as_bool()),
        (Some("open"), Some(true))
    );
    let reference = asked["reference"].as_str().unwrap().to_owned();
    // Pressed twice: the same request.
    let r = post(&user, path, json!({ "confirm_email": "paid12@vsee.com" })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["reference"], reference.as_str());
    assert_eq!(user.get_json(path).await["reference"], reference.as_str());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE door = 'app'").await,
        1
    );
    let eml = app
        .wait_for_mail(|eml| eml.contains(&reference) && eml.contains("To: paid12@vsee.com"))
        .await;
    assert!(
        eml.contains("We received your request") && !eml.contains("/tickets/verify/"),
        "{eml}"
    );

    // Profile and page show where it stands; the form is not offered twice.
    let (_, html) = user.get_page("/account/profile").await;
    assert!(html.contains(&reference) && html.contains("open"), "{html}");
    let (_, html) = user.get_page("/account/delete").await;
    assert!(
        html.contains(&reference) && !html.contains("REQUEST TERMINATION"),
        "{html}"
    );

    // Already verified: an agent approves it at once.
    let agent = staff_device(&app, "agent").await;
    let id = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await[0]["id"]
        .as_i64()
        .unwrap();
    let r = post(&agent, &format!("/api/v1/tickets/{id}/approval"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_status(&receipt, "completed").await;
}

async fn the_in_app_door_is_for_paid_accounts_with_a_fresh_log_in(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid13", "paid13@vsee.com", "paid", 0).await;
    let path = "/api/v1/me/termination-request";
    let anonymous = app.device();
    let (status, code) =
        error_code(post(&anonymous, path, json!({ "confirm_email": "paid13@vsee.com" })).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    let free = app.signed_up_and_logged_in("free13", "free13@vsee.com").await;
    let (status, code) =
        error_code(post(&free, path, json!({ "confirm_email": "free13@vsee.com" })).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));

    let user = app.device();
    assert_eq!(user.log_in("paid13", PASSWORD).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, code) =
        error_code(post(&user, path, json!({ "confirm_email": "paid13@vsee.com" })).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);

    // The page asks for the password then, and takes it.
    let (_, html) = user.get_page("/account/delete").await;
    assert!(html.contains("enter your password again"), "{html}");
    let r = user
        .submit_form(
            "/account/delete",
            "/account/termination-request",
            &[("email", "paid13@vsee.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "back to the page");
    assert_eq!(r.headers()["location"], "/account/delete");
    let (_, html) = user.get_page("/account/delete").await;
    assert!(
        html.contains("Your termination request") && html.contains("is open"),
        "{html}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE door = 'app' AND verified_at IS NOT NULL")
            .await,
        1
    );
}

crate::on_both_stacks!(
    a_signed_message_is_confirmed_by_the_owner_then_approved,
    links_expire_and_strangers_get_no_link,
    the_webhook_takes_a_whole_message_and_no_more,
    replies_join_the_ticket_they_answer,
    a_paid_user_requests_termination_in_the_app,
    the_in_app_door_is_for_paid_accounts_with_a_fresh_log_in,
);
