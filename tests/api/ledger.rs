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

/// A deletion opened for `vsee_id` (signed up first) and taken through its purge and, unless
/// `email` is false, its confirmation: ready for its ledger entry.
async fn purged_deletion(app: &TestApp, vsee_id: &str, email: bool) -> uuid::Uuid {
    use erasure::{
        domain::{Actor, Channel, VseeId},
        services::{accounts, deletion, purge},
    };
    app.seed_small(vsee_id, &format!("{vsee_id}@example.org")).await;
    let account = accounts::find_by_vsee_id(app.state.env(), &VseeId::parse(vsee_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let id = deletion::open_request(
        app.state.env(),
        &app.state.keys,
        &account,
        Actor::AccountHolder,
        Channel::Api,
    )
    .await
    .unwrap()
    .request_id;
    purge::run(app.state.env(), &app.state.purge_plan, id)
        .await
        .unwrap();
    if email {
        deletion::confirmation::send(app.state.env(), &app.state.keys, &app.state.mailer, id, 1)
            .await
            .unwrap();
    }
    id
}

async fn status_of(app: &TestApp, id: uuid::Uuid) -> String {
    app.strings(&format!("SELECT status FROM deletion_requests WHERE id = '{id}'"))
        .await
        .remove(0)
}

/// Group commit: the ledger job that holds the lock records every deletion ready for its
/// entry, each once, and leaves alone the ones that are not ready or cannot be recorded.
async fn the_ledger_job_records_every_ready_deletion_in_one_transaction(stack: Stack) {
    use erasure::{services::ledger, vault::tombstones::Record, workers::handlers};
    let app = spawn_app_without_workers(stack).await;
    let ready: Vec<uuid::Uuid> = [
        purged_deletion(&app, "ready0", true).await,
        purged_deletion(&app, "ready1", true).await,
        purged_deletion(&app, "ready2", true).await,
    ]
    .into();
    let unsent = purged_deletion(&app, "unsent", false).await;
    let broken = purged_deletion(&app, "broken", true).await;
    // An entry that cannot be built (its counts are not JSON) is its own job's failure only.
    app.execute(&format!(
        "UPDATE deletion_requests SET store_counts = 'not json' WHERE id = '{broken}'"
    ))
    .await;

    handlers::record_deletion(&app.state, ready[1]).await.unwrap();

    for id in &ready {
        assert_eq!(status_of(&app, *id).await, "completed");
    }
    assert_eq!(
        status_of(&app, unsent).await,
        "purged",
        "its confirmation is not settled"
    );
    assert_eq!(status_of(&app, broken).await, "purged");
    assert_eq!(app.verify_ledger().await, Ok(3));
    let mut recorded = app
        .strings("SELECT request_id FROM ledger_entries WHERE event = 'account_deleted' ORDER BY seq")
        .await;
    assert_eq!(
        recorded[0],
        ready[1].to_string(),
        "the job's own deletion comes first"
    );
    recorded.sort();
    let mut expected: Vec<String> = ready.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(recorded, expected);
    // Each one's processors' notices were queued with it, and one head covers all three.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM processor_deliveries").await,
        3 * app.state.processors.len() as i64
    );
    let head = ledger::log::newest_head(&app.state.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.size, 3);
    let journaled: Vec<i64> = app
        .state
        .vault
        .tombstones()
        .read()
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Deleted { seq, .. } => Some(seq),
            Record::Settled { .. } => None,
        })
        .collect();
    assert_eq!(journaled, [1, 2, 3]);

    // The others' own jobs add nothing.
    handlers::record_deletion(&app.state, ready[0]).await.unwrap();
    handlers::record_deletion(&app.state, ready[2]).await.unwrap();
    assert_eq!(app.verify_ledger().await, Ok(3));
    assert_eq!(app.state.vault.tombstones().read().unwrap().len(), 3);
    // The broken one's job reports its own error.
    assert!(handlers::record_deletion(&app.state, broken).await.is_err());
    assert_eq!(status_of(&app, broken).await, "purged");
    assert_eq!(app.verify_ledger().await, Ok(3));
}

crate::on_both_stacks!(
    entries_written_before_typed_events_keep_verifying,
    the_ledger_verifies_and_names_subjects_by_pseudonym_only,
    an_altered_or_removed_entry_is_detected,
    an_empty_ledger_verifies,
    concurrent_deletions_append_one_unbroken_chain,
    the_ledger_job_records_every_ready_deletion_in_one_transaction,
);
