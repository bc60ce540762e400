//! Agents working tickets: assignment and the `assignee` filter, internal notes, a question
//! mailed to the requester whose reply joins the ticket, the one extension of the deadline
//! (driven by the clock), and the two-person rule.

use erasure::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{helpers::*, intake::ingest, staff::staff_device, tickets::ticket_from};

async fn post(device: &Device, path: &str, body: Value) -> reqwest::Response {
    device.post_json(path, body).await
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

async fn agents_assign_note_ask_and_extend(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid30", "paid30@vsee.com", "paid", 0).await;
    let agent = staff_device(&app, "agent").await;
    let me = agent.get_json("/api/v1/staff/me").await;
    let (id, reference) = ticket_from(&app, &agent, "paid30@vsee.com", "work-30@mail.example").await;
    let (other, _) = ticket_from(&app, &agent, "someone@elsewhere.example", "work-31@mail.example").await;
    let my_id = app
        .strings("SELECT CAST(id AS TEXT) FROM staff WHERE email = 'agent@staff.example'")
        .await[0]
        .parse::<i64>()
        .unwrap();
    assert_eq!(me["role"], "agent");

    // Assignment, and the queue by assignee.
    let r = post(
        &agent,
        &format!("/api/v1/tickets/{id}/assignment"),
        json!({ "assignee_id": my_id }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["assignee_id"], my_id);
    // Again (each time a ledger event of its own).
    let r = post(
        &agent,
        &format!("/api/v1/tickets/{id}/assignment"),
        json!({ "assignee_id": my_id }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(ids(&agent.get_json("/api/v1/tickets?assignee=me").await), [id]);
    assert_eq!(
        ids(&agent.get_json(&format!("/api/v1/tickets?assignee={my_id}")).await),
        [id]
    );
    assert_eq!(
        ids(&agent.get_json("/api/v1/tickets?assignee=none").await),
        [other]
    );
    for bad in [json!({ "assignee_id": 999_999 }), json!({})] {
        let (status, code) =
            error_code(post(&agent, &format!("/api/v1/tickets/{other}/assignment"), bad).await).await;
        assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    }
    let _auditor = staff_device(&app, "auditor").await;
    let auditor_id = app
        .strings("SELECT CAST(id AS TEXT) FROM staff WHERE email = 'auditor@staff.example'")
        .await[0]
        .parse::<i64>()
        .unwrap();
    let (status, _) = error_code(
        post(
            &agent,
            &format!("/api/v1/tickets/{other}/assignment"),
            json!({ "assignee_id": auditor_id }),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 422, "an auditor works no tickets");

    // Text fields take strings, and not only white space (schemathesis sent `false`).
    for bad in [
        json!({ "body": false }),
        json!({ "body": " \u{2003} " }),
        json!({ "body": 12 }),
    ] {
        let (status, code) =
            error_code(post(&agent, &format!("/api/v1/tickets/{id}/notes"), bad).await).await;
        assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    }
    let (status, _) = error_code(
        post(
            &agent,
            &format!("/api/v1/tickets/{id}/rejection"),
            json!({ "reason": true }),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 422);
    // A note stays inside; a question is mailed, and the answer joins the ticket.
    let r = post(
        &agent,
        &format!("/api/v1/tickets/{id}/notes"),
        json!({ "body": "paid until March" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(
        &agent,
        &format!("/api/v1/tickets/{id}/questions"),
        json!({ "body": "Which VSee ID is the account?" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let eml = app
        .wait_for_mail(|eml| eml.contains("We need more information"))
        .await;
    assert!(
        eml.contains("Which VSee ID is the account?") && eml.contains("To: paid30@vsee.com"),
        "{eml}"
    );
    assert!(!eml.contains("paid until March"), "notes are never mailed");
    let ours = eml
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .trim()
        .to_owned();
    let answer = format!(
        "From: paid30@vsee.com\r\nSubject: Re: [{reference}] We need more information\r\nMessage-ID: <answer-30@mail.example>\r\nIn-Reply-To: {ours}\r\n\r\nIt is paid30.\r\n"
    );
    let out = ingest(&app.vars, answer.as_bytes());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), reference);
    let ticket = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    let kinds: Vec<_> = ticket["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["note", "question"]);
    assert_eq!(
        ticket["replies"][0]["body"].as_str().unwrap().trim(),
        "It is paid30."
    );

    // One extension, before the deadline, by at most 60 days; the requester is told.
    let extension = format!("/api/v1/tickets/{id}/extension");
    let (status, code) =
        error_code(post(&agent, &extension, json!({ "days": 61, "reason": "x" })).await).await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    let due_before = ticket["due_at"].as_str().unwrap().to_owned();
    let r = post(
        &agent,
        &extension,
        json!({ "days": 30, "reason": "the billing records are archived" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let extended: Value = r.json().await.unwrap();
    assert_eq!(extended["extended"], true);
    let days = (chrono::DateTime::parse_from_rfc3339(extended["due_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&due_before).unwrap())
    .num_days();
    assert_eq!(days, 30);
    app.wait_for_mail(|eml| {
        eml.contains("We need more time") && eml.contains("the billing records are archived")
    })
    .await;
    let (status, code) =
        error_code(post(&agent, &extension, json!({ "days": 5, "reason": "again" })).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    // Past its deadline, the other ticket can no longer be extended.
    app.clock.advance(chrono::Duration::days(31));
    let agent = staff_device(&app, "admin").await;
    let (status, code) = error_code(
        post(
            &agent,
            &format!("/api/v1/tickets/{other}/extension"),
            json!({ "days": 5, "reason": "late" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let overdue = agent.get_json("/api/v1/tickets?overdue=true").await;
    assert_eq!(ids(&overdue), [other], "the extended one is not overdue");
    let metrics = app
        .device()
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    for expected in [
        "erasure_open_tickets{status=\"all\"} 2",
        "erasure_open_tickets{status=\"overdue\"} 1",
        "erasure_open_tickets{status=\"due_soon\"} 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // Every change an agent made is a ledger event (what a note says stays with the ticket).
    let events = app
        .strings("SELECT DISTINCT event FROM ledger_entries ORDER BY event")
        .await;
    assert_eq!(
        events,
        [
            "ticket_asked",
            "ticket_assigned",
            "ticket_extended",
            "ticket_noted"
        ]
    );
}

async fn unmatched_tickets_are_linked_or_closed(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid32", "paid32@vsee.com", "paid", 0).await;
    let agent = staff_device(&app, "agent").await;
    let (id, reference) = ticket_from(
        &app,
        &agent,
        "old-address@elsewhere.example",
        "link-32@mail.example",
    )
    .await;
    let (spam, _) = ticket_from(&app, &agent, "spam@elsewhere.example", "spam-32@mail.example").await;
    let link = format!("/api/v1/tickets/{id}/account");
    let (status, code) = error_code(
        post(
            &agent,
            &link,
            json!({ "vsee_id": "nobody99", "reason": "said so" }),
        )
        .await,
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));

    let r = post(
        &agent,
        &link,
        json!({ "vsee_id": "paid32", "reason": "named the account in the message" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let linked: Value = r.json().await.unwrap();
    assert!(linked["account_id"].is_i64());
    assert_eq!(linked["verified"], false, "linking is not verifying");
    // The owner is asked at the account's registered address, not at the sender's.
    let eml = app
        .wait_for_mail(|eml| eml.contains("Confirm the request") && eml.contains(&reference))
        .await;
    assert!(eml.contains("To: paid32@vsee.com"), "{eml}");
    let (status, _) =
        error_code(post(&agent, &link, json!({ "vsee_id": "paid32", "reason": "again" })).await).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let closure = format!("/api/v1/tickets/{spam}/closure");
    let r = post(&agent, &closure, json!({ "reason": "spam" })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "closed");
    let (status, _) = error_code(post(&agent, &closure, json!({ "reason": "spam" })).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let events = app.strings("SELECT event FROM ledger_entries ORDER BY seq").await;
    assert_eq!(events, ["ticket_linked", "ticket_closed"]);

    // Past the retention, the closed ticket keeps its record and loses its content; the open
    // one keeps everything.
    let retention = chrono::Duration::days(90);
    let swept = erasure::services::tickets::sweep(app.state.env(), app.clock.now() - retention)
        .await
        .unwrap();
    assert_eq!(swept, 0, "not yet");
    app.clock.advance(retention + chrono::Duration::days(1));
    let swept = erasure::services::tickets::sweep(app.state.env(), app.clock.now() - retention)
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(
        app.strings(&format!(
            "SELECT sender || '|' || status FROM tickets WHERE id = {spam}"
        ))
        .await,
        ["(erased)|closed"]
    );
    // With its key: every copy of what it said (free pages, WAL, backups) is unreadable.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM data_keys WHERE owner = 'ticket:{spam}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM data_keys WHERE owner = 'ticket:{id}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.tickets()
            .await
            .iter()
            .filter(|t| t.id == id && t.sender == "old-address@elsewhere.example")
            .count(),
        1
    );
}

async fn two_agents_approve_under_the_two_person_rule(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_SUPPORT__TWO_PERSON_APPROVAL", "true")],
    )
    .await;
    app.seed("paid31", "paid31@vsee.com", "paid", 0).await;
    let first = staff_device(&app, "agent").await;
    let (id, _) = ticket_from(&app, &first, "paid31@vsee.com", "two-31@mail.example").await;
    post(
        &first,
        &format!("/api/v1/tickets/{id}/verification"),
        json!({ "reason": "called back" }),
    )
    .await;
    let approval = format!("/api/v1/tickets/{id}/approval");

    let r = post(&first, &approval, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "recorded, not started");
    assert!(r.json::<Value>().await.unwrap()["first_approved_by"].is_i64());
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);
    let (status, code) = error_code(post(&first, &approval, json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "conflict"),
        "not twice by one agent"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);

    let second = staff_device(&app, "admin").await;
    let r = post(&second, &approval, json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_status(&receipt, "completed").await;
}

crate::on_both_stacks!(
    agents_assign_note_ask_and_extend,
    unmatched_tickets_are_linked_or_closed,
    two_agents_approve_under_the_two_person_rule,
);
