//! The purge and the jobs after it: idempotent, resumable, and thorough.

use std::{collections::BTreeMap, time::Duration};

use erasure::services::purge::{self, PurgeOutcome};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const MESSAGES: u64 = 120;

/// What the seeded account (7 contacts, 5 calls, 3 devices) leaves per store.
fn expected_counts() -> BTreeMap<String, i64> {
    [
        ("accounts", 1),
        ("avatars", 1),
        ("calls", 5),
        ("contacts", 14),
        ("conversation_members", 7),
        ("conversations", 7),
        // No takeout was asked for.
        ("data_exports", 0),
        ("devices", 3),
        ("exports", 0),
        ("messages", MESSAGES as i64),
        // Ended with the request itself, before the purge.
        ("notifications", 0),
        ("password_resets", 0),
        ("sessions", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn seeded_and_requested(app: &TestApp) -> uuid::Uuid {
    app.seed("mark08", "mark+08@vsee.com", "free", MESSAGES).await;
    let device = app.device();
    assert_eq!(device.log_in("mark08", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        device.confirm_deletion("mark+08@vsee.com").await.status(),
        StatusCode::ACCEPTED
    );
    app.only_request_id().await
}

async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "accounts",
        "contacts",
        "conversations",
        "conversation_members",
        "messages",
        "devices",
        "sessions",
        "purge_progress",
        "outbox",
    ] {
        counts.push(app.count(&format!("SELECT COUNT(*) FROM {table}")).await);
    }
    counts.push(
        app.count("SELECT COUNT(*) FROM calls WHERE caller_id IS NULL OR callee_id IS NULL")
            .await,
    );
    counts
}

async fn the_purge_run_twice_leaves_the_same_end_state(stack: Stack) {
    let app = spawn_app_without_workers(stack).await;
    let id = seeded_and_requested(&app).await;

    let first = purge::run(app.state.env(), &app.state.purge_plan, id)
        .await
        .unwrap();
    assert_eq!(first, PurgeOutcome::Purged(expected_counts()));
    let after_first = snapshot(&app).await;
    let request_after_first = app.request().await;

    let second = purge::run(app.state.env(), &app.state.purge_plan, id)
        .await
        .unwrap();
    assert_eq!(second, PurgeOutcome::AlreadyPurged);
    assert_eq!(snapshot(&app).await, after_first);
    assert_eq!(app.request().await, request_after_first);
    assert_eq!(
        request_after_first.status,
        erasure::domain::DeletionStatus::Purged
    );
}

async fn two_purges_racing_count_every_row_once(stack: Stack) {
    let app = spawn_app_without_workers(stack).await;
    let id = seeded_and_requested(&app).await;
    let (a, b) = tokio::join!(
        purge::run(app.state.env(), &app.state.purge_plan, id),
        purge::run(app.state.env(), &app.state.purge_plan, id)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for outcome in [a, b] {
        if let PurgeOutcome::Purged(counts) = outcome {
            assert_eq!(counts, expected_counts());
        }
    }
    let stored: BTreeMap<String, i64> =
        serde_json::from_str(app.request().await.store_counts.as_deref().unwrap()).unwrap();
    assert_eq!(stored, expected_counts());
}

async fn a_purge_that_fails_part_way_completes_on_retry_with_correct_counts(stack: Stack) {
    let app = spawn_app_without_workers(stack).await;
    let id = seeded_and_requested(&app).await;
    // Let the first chunk of messages go, then fail inside the second (test chunk size: 50;
    // the first chunk with messages in it also holds the rows of the rules before them).
    let first_message = app.count("SELECT MIN(id) FROM messages").await;
    app.fail_deletes("messages", Some(&format!("OLD.id >= {}", first_message + 75)))
        .await;

    assert!(
        purge::run(app.state.env(), &app.state.purge_plan, id)
            .await
            .is_err()
    );
    let rid = id.to_string();
    let done = |step: &str| {
        format!(
            "SELECT COUNT(*) FROM purge_progress WHERE request_id = '{rid}' AND step = '{step}' AND completed_at IS NOT NULL"
        )
    };
    assert_eq!(
        app.count(&done("sessions.account_id")).await,
        1,
        "the first store completed"
    );
    assert_eq!(app.count(&done("messages.sender_id")).await, 0);
    let partial = format!(
        "SELECT rows_removed FROM purge_progress WHERE request_id = '{rid}' AND step = 'messages.sender_id'"
    );
    let removed = MESSAGES as i64 - app.count("SELECT COUNT(*) FROM messages").await;
    assert!((1..=50).contains(&removed), "{removed} messages removed");
    assert_eq!(
        app.count(&partial).await,
        removed,
        "exactly the committed chunks are counted"
    );
    assert_eq!(
        app.request().await.status,
        erasure::domain::DeletionStatus::Purging
    );

    app.stop_failing_deletes("messages").await;
    assert_eq!(
        purge::run(app.state.env(), &app.state.purge_plan, id)
            .await
            .unwrap(),
        PurgeOutcome::Purged(expected_counts())
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0);
}

async fn a_failing_purge_job_is_retried_by_the_worker_until_it_succeeds(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_QUEUE__MAX_ATTEMPTS", "1000")],
    )
    .await;
    app.fail_deletes("devices", None).await;
    seeded_and_requested(&app).await;
    let last_error = eventually("the purge to fail", Duration::from_secs(15), || async {
        app.request().await.last_error
    })
    .await;
    assert!(last_error.contains("injected failure"), "{last_error}");
    app.stop_failing_deletes("devices").await;

    let request = eventually("the deletion to complete", Duration::from_secs(15), || async {
        let request = app.request().await;
        (request.status == erasure::domain::DeletionStatus::Completed).then_some(request)
    })
    .await;
    assert!(request.attempts >= 2, "it took a retry");
    let stored: BTreeMap<String, i64> =
        serde_json::from_str(request.store_counts.as_deref().unwrap()).unwrap();
    assert_eq!(stored, expected_counts());
    assert_eq!(request.last_error, None);
}

/// Every file under `dir` (but the mail outbox) that contains `needle`.
pub(crate) fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != "outbox" {
                    stack.push(path);
                }
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn after_completion_no_byte_of_the_user_remains_in_the_data_directory() {
    let app = spawn_app().await;
    app.seed("zq-mark-0815", "zebediah.quill@example.org", "free", 200)
        .await;
    let device = app.device();
    device.log_in("zq-mark-0815", PASSWORD).await;
    device
        .patch_me(serde_json::json!({ "offline_notification_email": "zq.offline@example.net", "offline_notification_enabled": true }))
        .await;
    let push_tokens = app.strings("SELECT push_token FROM devices").await;
    assert_eq!(push_tokens.len(), 3);
    // At rest, nothing personal is in clear: the email is there only sealed.
    let sealed_email = app
        .strings(&format!(
            "SELECT email FROM accounts WHERE {}",
            app.account_is("zq-mark-0815")
        ))
        .await
        .remove(0);
    assert!(sealed_email.starts_with("enc1:"), "{sealed_email}");
    assert!(
        files_containing(&app.data_dir(), b"zebediah.quill@example.org").is_empty(),
        "the email is in clear before the purge"
    );
    assert!(
        !files_containing(&app.data_dir(), sealed_email.as_bytes()).is_empty(),
        "the scan can see the data before the purge"
    );

    let receipt = device.request_deletion("zebediah.quill@example.org").await;
    app.wait_for_status(&receipt, "completed").await;

    let mut needles: Vec<Vec<u8>> = [
        "zq-mark-0815",
        "zebediah.quill@example.org",
        "zq.offline@example.net",
        "Zebediah",
        "Quillfeather",
        "wrote message",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    needles.extend(push_tokens.iter().map(|t| t.as_bytes().to_vec()));
    needles.push(sealed_email.into_bytes());
    for needle in &needles {
        let hits = files_containing(&app.data_dir(), needle);
        assert!(
            hits.is_empty(),
            "{:?} still in {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // The one place it may remain: the email we sent.
    assert!(!files_containing(&app.outbox(), b"zebediah.quill@example.org").is_empty());
}

async fn a_purge_that_keeps_failing_ends_failed_with_its_error(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_QUEUE__MAX_ATTEMPTS", "2")],
    )
    .await;
    app.fail_deletes("devices", None).await;
    app.seed("mark08", "mark+08@vsee.com", "free", 10).await;
    let device = app.device();
    device.log_in("mark08", PASSWORD).await;
    let body: Value = device
        .confirm_deletion("mark+08@vsee.com")
        .await
        .json()
        .await
        .unwrap();
    let status = app
        .wait_for_status(body["receipt_id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(status["steps"][0]["status"], "failed");
    let request = app.request().await;
    assert_eq!(request.attempts, 2);
    assert!(request.last_error.unwrap().contains("injected failure"));
    assert!(
        app.outbox_files().is_empty(),
        "no confirmation for a deletion that did not happen"
    );

    // The dead job is listed with its error, on any backend.
    let out = app.cli(&["jobs", "dead"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[1], "purge");
    assert_eq!(fields[2], request.id);
    assert_eq!(fields[3], "2");
    assert!(fields[5].contains("injected failure"), "{listing}");

    // Retrying something that is not a dead job changes nothing and says why.
    let out = app.cli(&["jobs", "retry", "999999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // Fixed, retried: the deletion completes, with one confirmation.
    app.stop_failing_deletes("devices").await;
    let out = app.cli(&["jobs", "retry", fields[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.wait_for_status(body["receipt_id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(app.outbox_files().len(), 1);
    let out = app.cli(&["jobs", "dead"]);
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    let out = app.cli(&["jobs", "retry", fields[0]]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a retried job cannot be retried twice"
    );
}

crate::on_both_stacks!(
    the_purge_run_twice_leaves_the_same_end_state,
    two_purges_racing_count_every_row_once,
    a_purge_that_fails_part_way_completes_on_retry_with_correct_counts,
    a_failing_purge_job_is_retried_by_the_worker_until_it_succeeds,
    a_purge_that_keeps_failing_ends_failed_with_its_error,
);
