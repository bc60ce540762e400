//! The agents' ticket queue over the API: sorted by due date, filtered, searched, one ticket
//! with its message; overdue follows the clock.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{helpers::*, intake::ingest, staff::staff_device};

fn references(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| {
            t["reference"]
                .as_str()
                .unwrap_or_else(|| panic!("{list}"))
                .to_owned()
        })
        .collect()
}

async fn agents_see_the_queue_filtered_and_searched(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid02", "paid2@vsee.com", "paid", 0).await;
    let mut opened = Vec::new();
    for (from, id, subject) in [
        ("paid2@vsee.com", "one@mail.example", "Please close my account"),
        (
            "nobody@elsewhere.example",
            "two@mail.example",
            "Cancel 100% of it_now",
        ),
    ] {
        let raw = format!(
            "From: {from}\r\nTo: help@vsee.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n<b>Bye</b> now.\r\n"
        );
        let out = ingest(&app.vars, raw.as_bytes());
        assert_eq!(out.status.code(), Some(0));
        opened.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let agent = staff_device(&app, "agent").await;

    let all = agent.get_json("/api/v1/tickets").await;
    assert_eq!(references(&all), opened, "soonest due first");
    assert_eq!(all[0]["status"], "open");
    assert_eq!(all[0]["verified"], false);
    assert!(all[0]["account_id"].is_i64());
    assert!(all[1]["account_id"].is_null(), "an unmatched sender");

    // Searches: part of a reference (a wildcard character is searched for as itself), or a
    // sender's whole address (senders and subjects are sealed: no part of them matches).
    let lower_reference = opened[0].to_lowercase();
    let part_of_reference = opened[1][2..6].to_owned();
    for (q, expected) in [
        ("%25", vec![]),
        ("_", vec![]),
        (part_of_reference.as_str(), vec![opened[1].clone()]),
        (lower_reference.as_str(), vec![opened[0].clone()]),
        ("paid2@vsee.com", vec![opened[0].clone()]),
        ("PAID2@vsee.com", vec![opened[0].clone()]),
        ("nobody@elsewhere.example", vec![opened[1].clone()]),
        ("PAID2@", vec![]),
        ("Cancel", vec![]),
    ] {
        let found = agent.get_json(&format!("/api/v1/tickets?q={q}")).await;
        assert_eq!(references(&found), expected, "q={q}");
    }
    assert_eq!(
        references(&agent.get_json("/api/v1/tickets?status=approved").await).len(),
        0
    );
    assert_eq!(
        references(&agent.get_json("/api/v1/tickets?verified=false&limit=1").await),
        [opened[0].clone()]
    );
    assert_eq!(
        references(&agent.get_json("/api/v1/tickets?offset=1").await),
        [opened[1].clone()]
    );

    // Overdue once a month has passed with no answer.
    assert_eq!(
        references(&agent.get_json("/api/v1/tickets?overdue=true").await).len(),
        0
    );
    app.clock.advance(chrono::Duration::days(31));
    // The agent's session has long expired; an admin (who holds every role) looks.
    let (status, _) = error_code(
        agent
            .client
            .get(agent.url("/api/v1/tickets"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 401);
    let agent = staff_device(&app, "admin").await;
    let overdue = agent.get_json("/api/v1/tickets?overdue=true").await;
    assert_eq!(references(&overdue), opened);
    assert_eq!(overdue[0]["overdue"], true);

    // One ticket: its message as text, never as HTML to render.
    let id = all[0]["id"].as_i64().unwrap();
    let one = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(one["reference"], opened[0].as_str());
    assert_eq!(one["door"], "pipe");
    assert_eq!(one["body"].as_str().unwrap().trim(), "<b>Bye</b> now.");

    // Bad filters are refused with a code, not ignored.
    for bad in ["status=pending", "limit=0", "limit=201", "verified=maybe"] {
        let (status, code) = error_code(
            agent
                .client
                .get(agent.url(&format!("/api/v1/tickets?{bad}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"), "{bad}");
    }
}

/// Opens a ticket from `from` through the pipe; its id and reference.
pub(crate) async fn ticket_from(
    app: &TestApp,
    agent: &Device,
    from: &str,
    message_id: &str,
) -> (i64, String) {
    let raw = format!(
        "From: {from}\r\nTo: help@vsee.com\r\nSubject: Terminate\r\nMessage-ID: <{message_id}>\r\n\r\nPlease.\r\n"
    );
    let out = ingest(&app.vars, raw.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    let reference = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let found = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await;
    (found[0]["id"].as_i64().unwrap(), reference)
}

async fn post(device: &Device, path: &str, body: Value) -> reqwest::Response {
    device.post_json(path, body).await
}

async fn a_verified_ticket_approved_runs_the_deletion_by_the_agent(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let account = app.seed("paid03", "paid3@vsee.com", "paid", 5).await;
    let agent = staff_device(&app, "agent").await;
    let agent_id = agent.get_json("/api/v1/staff/me").await;
    assert_eq!(agent_id["role"], "agent");
    let (id, _) = ticket_from(&app, &agent, "paid3@vsee.com", "approve@mail.example").await;
    let approval = format!("/api/v1/tickets/{id}/approval");

    // From is not proof: unverified, it cannot be approved, and nothing happens.
    let (status, code) = error_code(post(&agent, &approval, json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ticket_unverified")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);

    // Blank reasons are refused and change nothing.
    let verification = format!("/api/v1/tickets/{id}/verification");
    for blank in ["   ", "\u{85}\u{2003}\t"] {
        let (status, code) = error_code(post(&agent, &verification, json!({ "reason": blank })).await).await;
        assert_eq!(
            (status.as_u16(), code.as_str()),
            (422, "invalid_input"),
            "{blank:?}"
        );
    }
    let r = post(
        &agent,
        &verification,
        json!({ "reason": "called back on the number on file" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["verified"], true);

    let r = post(&agent, &approval, json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_status(&receipt, "completed").await;
    // The same pipeline as self-service, by this agent, through support.
    let staff_id = app
        .strings("SELECT CAST(id AS TEXT) FROM staff WHERE email = 'agent@staff.example'")
        .await;
    assert_eq!(
        app.strings(&format!(
            "SELECT actor_kind || '|' || CAST(actor_id AS TEXT) || '|' || channel FROM deletion_requests \
             WHERE account_id = {}",
            account.account_id
        ))
        .await,
        [format!("agent|{}|support", staff_id[0])]
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE sender_id = {}",
            account.account_id
        ))
        .await,
        0
    );
    let ticket = agent.get_json(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["status"], "approved");

    // Decided once: a second approval or a rejection is a conflict and changes nothing.
    let (status, code) = error_code(post(&agent, &approval, json!({})).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (status, _) = error_code(
        post(
            &agent,
            &format!("/api/v1/tickets/{id}/rejection"),
            json!({ "reason": "late" }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 1);
}

async fn rejected_and_unmatched_tickets_delete_nothing(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paid04", "paid4@vsee.com", "paid", 0).await;
    let agent = staff_device(&app, "agent").await;

    let (id, _) = ticket_from(&app, &agent, "paid4@vsee.com", "reject@mail.example").await;
    let r = post(
        &agent,
        &format!("/api/v1/tickets/{id}/rejection"),
        json!({ "reason": "the subscription is under dispute" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "rejected");
    // The requester is told why, and where to complain.
    let eml = app
        .wait_for_mail(|eml| eml.contains("Your request was not carried out"))
        .await;
    assert!(eml.contains("To: paid4@vsee.com"), "{eml}");
    assert!(
        eml.contains("the subscription is under dispute") && eml.contains("supervisory authority"),
        "{eml}"
    );
    post(
        &agent,
        &format!("/api/v1/tickets/{id}/verification"),
        json!({ "reason": "too late" }),
    )
    .await;
    let (status, code) =
        error_code(post(&agent, &format!("/api/v1/tickets/{id}/approval"), json!({})).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));

    // Verified, but nobody's address: there is no account to delete.
    let (stranger, _) = ticket_from(
        &app,
        &agent,
        "stranger@elsewhere.example",
        "stranger@mail.example",
    )
    .await;
    post(
        &agent,
        &format!("/api/v1/tickets/{stranger}/verification"),
        json!({ "reason": "phoned" }),
    )
    .await;
    let (status, code) =
        error_code(post(&agent, &format!("/api/v1/tickets/{stranger}/approval"), json!({})).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));

    // Auditors do not decide.
    let auditor = staff_device(&app, "auditor").await;
    let (status, code) = error_code(
        post(
            &auditor,
            &format!("/api/v1/tickets/{stranger}/rejection"),
            json!({ "reason": "x" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "forbidden_role"));
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM accounts WHERE {} AND status = 'active'",
            app.account_is("paid04")
        ))
        .await,
        1
    );
}

crate::on_both_stacks!(
    agents_see_the_queue_filtered_and_searched,
    a_verified_ticket_approved_runs_the_deletion_by_the_agent,
    rejected_and_unmatched_tickets_delete_nothing,
);
