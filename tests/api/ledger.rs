use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn delete_account(app: &TestApp, vsee_id: &str, email: &str) {
    let device = app.signed_up_and_logged_in(vsee_id, email).await;
    let receipt = device.request_deletion(email).await;
    app.wait_for_status(&receipt, "completed").await;
}

async fn the_ledger_verifies_and_names_subjects_by_pseudonym_only(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "mark08", "mark+08@vsee.com").await;
    delete_account(&app, "ada", "ada@example.org").await;

    assert_eq!(app.verify_ledger().await, Ok(2));

    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 entries"));

    let out = app.cli(&["audit", "export"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    let entry = &lines[0]["entry"];
    assert_eq!(entry["v"], 2);
    assert_eq!(entry["event"], "account_deleted");
    assert_eq!(entry["actor"], serde_json::json!({ "kind": "account_holder" }));
    assert_eq!(entry["data"]["channel"], "api");
    assert_eq!(entry["data"]["rows_removed"]["accounts"], 1);
    assert_eq!(
        entry["subjects"]["vsee_id"],
        app.state.keys.pseudonym("vsee_id", "mark08")
    );
    assert_eq!(
        entry["subjects"]["email"],
        app.state.keys.pseudonym("email", "mark+08@vsee.com")
    );
    // Either identifier finds the entry.
    for pseudonym in [&entry["subjects"]["vsee_id"], &entry["subjects"]["email"]] {
        let sql = format!(
            "SELECT COUNT(*) FROM ledger_subjects WHERE pseudonym = '{}'",
            pseudonym.as_str().unwrap()
        );
        assert_eq!(app.count(&sql).await, 1);
    }
    for clear in ["mark08", "mark+08", "ada@example.org", "Zebediah", "Quillfeather"] {
        assert!(!text.contains(clear), "the export names {clear}");
    }
}

async fn an_altered_or_removed_entry_is_detected(stack: Stack) {
    let app = spawn_app_on(stack).await;
    for (id, email) in [
        ("one1", "one@example.org"),
        ("two2", "two@example.org"),
        ("three3", "three@example.org"),
    ] {
        delete_account(&app, id, email).await;
    }
    app.execute(
        "UPDATE ledger_entries SET body = replace(body, '\"accounts\":1', '\"accounts\":0') WHERE seq = 2",
    )
    .await;

    let broken = app.verify_ledger().await.unwrap_err();
    assert_eq!(broken.seq, 2);
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("entry 2"));

    // Re-signing is impossible without the key, and dropping the entry breaks the chain too.
    app.execute("DELETE FROM ledger_entries WHERE seq = 2").await;
    let broken = app.verify_ledger().await.unwrap_err();
    assert_eq!(broken.seq, 3);

    // Cutting off the newest entry leaves a valid chain, but not a valid ledger.
    let app = spawn_app_on(stack).await;
    delete_account(&app, "five5", "five@example.org").await;
    delete_account(&app, "six6", "six@example.org").await;
    app.execute("DELETE FROM ledger_entries WHERE seq = 2").await;
    let broken = app.verify_ledger().await.unwrap_err();
    assert_eq!(broken.seq, 2, "{broken}");

    // A changed index column is caught even when the signed body is intact.
    let app = spawn_app_on(stack).await;
    delete_account(&app, "four4", "four@example.org").await;
    app.execute("UPDATE ledger_entries SET subject = 'someone-else' WHERE seq = 1")
        .await;
    assert_eq!(app.verify_ledger().await.unwrap_err().seq, 1);
}

/// An entry written before events were typed (a version-1 body) keeps verifying, and new
/// entries chain onto it: history is read as written, never rewritten.
async fn entries_written_before_typed_events_keep_verifying(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let body = format!(
        r#"{{"seq":1,"event":"account_deleted","request_id":"00000000-0000-0000-0000-000000000001","subject":"{}","actor":"account_holder","channel":"web","requested_at":"2026-11-25T10:00:00.000000Z","purged_at":"2026-11-25T10:00:01.000000Z","confirmation_sent_at":"2026-11-25T10:00:02.000000Z","recorded_at":"2026-11-25T10:00:03.000000Z","rows_removed":{{"accounts":1}},"prev_hash":"{}"}}"#,
        app.state.keys.pseudonym("vsee_id", "old1"),
        erasure::services::ledger::GENESIS_HASH
    );
    let hash = app
        .state
        .keys
        .ledger_mac(erasure::services::ledger::GENESIS_HASH, &body);
    app.execute(&format!(
        "INSERT INTO ledger_entries (seq, request_id, event, subject, recorded_at, body, prev_hash, hash) \
         VALUES (1, '00000000-0000-0000-0000-000000000001', 'account_deleted', '{}', '2026-11-25 10:00:03+00:00', '{}', '{}', '{hash}')",
        app.state.keys.pseudonym("vsee_id", "old1"),
        body.replace('\'', "''"),
        erasure::services::ledger::GENESIS_HASH,
    ))
    .await;
    delete_account(&app, "new2", "new2@example.org").await;
    assert_eq!(app.verify_ledger().await, Ok(2));
    let bodies = app.strings("SELECT body FROM ledger_entries ORDER BY seq").await;
    assert_eq!(bodies[0], body, "the old entry is untouched");
    let newer: Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!((newer["v"].as_i64(), newer["seq"].as_i64()), (Some(2), Some(2)));
}

async fn an_empty_ledger_verifies(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 entries"));

    // Could not check at all is not "does not verify": exit 2, so a cron job can tell.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
        .args(["audit", "verify"])
        .env_clear()
        .envs(&app.vars)
        .env("ERASURE_DATABASE__URL", "mysql://nowhere/db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
    assert_eq!(app.device().me().await.status(), StatusCode::UNAUTHORIZED);
}

async fn concurrent_deletions_append_one_unbroken_chain(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let mut receipts = Vec::new();
    for i in 0..6 {
        let device = app
            .signed_up_and_logged_in(&format!("user{i}"), &format!("user{i}@example.org"))
            .await;
        receipts.push((device, format!("user{i}@example.org")));
    }
    let confirmations = receipts
        .iter()
        .map(|(device, email)| device.confirm_deletion(email));
    let responses = futures::future::join_all(confirmations).await;
    for r in responses {
        let body: Value = r.json().await.unwrap();
        app.wait_for_status(body["receipt_id"].as_str().unwrap(), "completed")
            .await;
    }
    assert_eq!(app.verify_ledger().await, Ok(6));
    assert_eq!(app.outbox_files().len(), 6, "one email each");
}

crate::on_both_stacks!(
    entries_written_before_typed_events_keep_verifying,
    the_ledger_verifies_and_names_subjects_by_pseudonym_only,
    an_altered_or_removed_entry_is_detected,
    an_empty_ledger_verifies,
    concurrent_deletions_append_one_unbroken_chain,
);
