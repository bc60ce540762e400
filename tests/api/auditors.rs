//! The auditor's API: "was this person deleted?" by either identifier, every read recorded as
//! a ledger entry (never with the identifier in clear), throttled lookups, and exports that
//! stream and parse back.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::staff::staff_device;

async fn delete_account(app: &TestApp, vsee_id: &str, email: &str) {
    let device = app.signed_up_and_logged_in(vsee_id, email).await;
    let receipt = device.request_deletion(email).await;
    app.wait_for_status(&receipt, "completed").await;
}

async fn lookup(auditor: &Device, identifier: &str) -> reqwest::Response {
    auditor
        .post_json("/api/v1/ledger/lookup", json!({ "identifier": identifier }))
        .await
}

async fn an_auditor_finds_a_deleted_person_by_email_or_vsee_id_and_every_read_is_recorded(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "mark08", "mark+08@vsee.com").await;
    delete_account(&app, "ada", "ada@example.org").await;
    let auditor = staff_device(&app, "auditor").await;

    for identifier in ["mark+08@vsee.com", "MARK+08@VSEE.COM", "mark08", "Mark08"] {
        let found: Value = lookup(&auditor, identifier).await.json().await.unwrap();
        assert_eq!(found["deleted"], true, "{identifier}");
        let entries = found["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{identifier}: {found}");
        assert_eq!(entries[0]["event"], "account_deleted");
        assert_eq!(entries[0]["seq"], 1);
    }
    for (identifier, kind) in [("nobody@example.org", "email"), ("nobody1", "vsee_id")] {
        let not_found: Value = lookup(&auditor, identifier).await.json().await.unwrap();
        assert_eq!(not_found["deleted"], false);
        assert_eq!(not_found["kind"], kind);
        assert_eq!(not_found["entries"], json!([]));
    }

    // Bad input is refused and changes nothing: no read recorded, no throttle counted.
    let entries_before = app.count("SELECT COUNT(*) FROM ledger_entries").await;
    for bad in ["", "not an id!!", "@@"] {
        let (status, code) = error_code(lookup(&auditor, bad).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{bad:?}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ledger_entries").await,
        entries_before
    );

    // A page, an entry and an export, each recorded too.
    let page = auditor
        .get_json("/api/v1/ledger?event=account_deleted&channel=api")
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let entry = auditor.get_json("/api/v1/ledger/1").await;
    assert_eq!(entry["entry"]["event"], "account_deleted");
    let steps: Vec<&str> = entry["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert!(
        steps[0].starts_with("deletion requested by account holder"),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.starts_with("purge finished: accounts 1")),
        "{steps:?}"
    );
    assert!(steps.contains(&"confirmation email sent"), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), "completed: ledger entry written");
    let export = auditor
        .client
        .get(auditor.url("/api/v1/ledger/export?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    export.text().await.unwrap();

    let auditor_id = app.count("SELECT id FROM staff WHERE role = 'auditor'").await;
    let reads = auditor
        .get_json("/api/v1/ledger?actor_kind=staff&limit=100")
        .await;
    let reads = reads["entries"].as_array().unwrap();
    let count = |event: &str| reads.iter().filter(|e| e["event"] == event).count();
    assert_eq!(count("ledger_looked_up"), 6, "4 found, 2 not found");
    assert_eq!(count("ledger_entry_viewed"), 1);
    assert_eq!(count("ledger_exported"), 1);
    assert!(count("ledger_searched") >= 1);
    let bodies = app
        .strings("SELECT body FROM ledger_entries WHERE event LIKE 'ledger_%'")
        .await;
    for body in &bodies {
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body["actor"],
            json!({ "kind": "staff", "id": auditor_id.to_string() })
        );
    }
    let all = bodies.join("\n");
    for clear in ["mark", "vsee.com", "nobody", "ada@"] {
        assert!(!all.contains(clear), "a read names {clear}");
    }
    let pseudonym = app.state.keys.pseudonym("email", "mark+08@vsee.com");
    assert!(
        all.contains(&pseudonym),
        "a lookup records the pseudonym it asked for"
    );
    assert!(app.verify_ledger().await.is_ok());

    // Filters that name nothing are refused.
    for query in [
        "event=nope",
        "channel=fax",
        "outcome=maybe",
        "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
    ] {
        let r = auditor
            .client
            .get(auditor.url(&format!("/api/v1/ledger?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await.0, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
    }
}

async fn pages_follow_the_keyset_to_the_end(stack: Stack) {
    let app = spawn_app_on(stack).await;
    for i in 0..5 {
        delete_account(&app, &format!("page{i}"), &format!("page{i}@example.org")).await;
    }
    let auditor = staff_device(&app, "auditor").await;
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let page = auditor
            .get_json(&format!("/api/v1/ledger?event=account_deleted&limit=2{next}"))
            .await;
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page["next_before"].as_i64() {
            Some(before) => next = format!("&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
}

async fn lookups_are_throttled_per_staff_member(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_AUDIT__LOOKUPS_BEFORE_THROTTLE", "2")],
    )
    .await;
    let auditor = staff_device(&app, "auditor").await;
    for _ in 0..2 {
        assert_eq!(
            lookup(&auditor, "someone@example.org").await.status(),
            StatusCode::OK
        );
    }
    let refused = lookup(&auditor, "someone@example.org").await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(error_code(refused).await.1, "rate_limited");
    // Another staff member is not held up.
    let admin = staff_device(&app, "admin").await;
    assert_eq!(
        lookup(&admin, "someone@example.org").await.status(),
        StatusCode::OK
    );
}

/// 100,000 entries (written straight into the table: the export reads rows, it does not
/// verify them) stream out as CSV and NDJSON and parse back, in order.
async fn a_streamed_export_of_100000_entries_parses_back(stack: Stack) {
    const N: i64 = 100_000;
    let app = spawn_app_on(stack).await;
    app.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N}) \
         INSERT INTO ledger_entries (seq, request_id, event, subject, recorded_at, body, prev_hash, hash) \
         SELECT i, 'r' || i, 'account_deleted', '', '2026-11-01 00:00:00+00:00', '{{\"seq\":' || i || ',\"note\":\"a, b\"}}', 'p' || i, 'h' || i FROM n"
    ))
    .await;
    let auditor = staff_device(&app, "auditor").await;
    let started = std::time::Instant::now();
    let ndjson = auditor
        .client
        .get(auditor.url("/api/v1/ledger/export?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.status(), StatusCode::OK);
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    assert!(
        ndjson.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = ndjson.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Its own read joined the ledger before the export began.
    assert_eq!(lines.len() as i64, N + 1);
    for (i, line) in lines.iter().take(N as usize).enumerate() {
        assert_eq!(line["seq"], i as i64 + 1);
        assert_eq!(line["entry"]["seq"], i as i64 + 1);
    }
    assert_eq!(lines[N as usize]["entry"]["event"], "ledger_exported");

    let csv = auditor
        .client
        .get(auditor.url("/api/v1/ledger/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut records = text.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        records.next().unwrap(),
        "seq,recorded_at,event,key,channel,actor_kind,outcome,subject,prev_hash,hash,body"
    );
    let records: Vec<&str> = records.collect();
    assert_eq!(records.len() as i64, N + 2);
    let last_seeded = records[N as usize - 1];
    assert!(
        last_seeded.starts_with(&format!("{N},2026-11-01T00:00:00.000000Z,account_deleted,r{N},")),
        "{last_seeded}"
    );
    assert!(
        last_seeded.ends_with(&format!(
            ",p{N},h{N},\"{{\"\"seq\"\":{N},\"\"note\"\":\"\"a, b\"\"}}\""
        )),
        "{last_seeded}"
    );
    figure!(
        "export of {N} entries as NDJSON and CSV over HTTP (debug build): {:?}",
        started.elapsed()
    );
}

crate::on_both_stacks!(
    an_auditor_finds_a_deleted_person_by_email_or_vsee_id_and_every_read_is_recorded,
    pages_follow_the_keyset_to_the_end,
    lookups_are_throttled_per_staff_member,
    a_streamed_export_of_100000_entries_parses_back,
);
