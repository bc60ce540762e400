//! A deletion never stalls: an undeliverable confirmation does not hold it, a dead step marks
//! it failed where everyone looks, a failing job does not hold up the others, a job the queue
//! lost is sent again, and `audit verify` names whatever is left without its ledger entry.

use std::time::{Duration, Instant};

use erasure::{
    domain::{Actor, Channel},
    models::deletion_request,
    services::deletion,
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use crate::helpers::*;

fn step_statuses(status: &Value) -> Vec<String> {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Moves the request's `requested_at` back by `by`, as if it had been waiting that long.
async fn backdate_request(app: &TestApp, by: chrono::Duration) {
    let request = app.request().await;
    deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::RequestedAt,
            Expr::value(request.requested_at - by),
        )
        .filter(deletion_request::Column::Id.eq(request.id))
        .exec(&app.state.db.conn)
        .await
        .unwrap();
}

async fn metric(app: &TestApp, line_start: &str) -> String {
    let text = app.device().get_page("/metrics").await.1;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
        .to_owned()
}

async fn an_undeliverable_confirmation_does_not_hold_the_deletion(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("legacy1", "legacy1@example.org", "free", 5).await;
    // An address stored before sign-up refused what the mailer cannot take.
    // (In clear, as an address from before encryption is, until the migration job seals it.)
    app.execute(&format!(
        "UPDATE accounts SET email = 'a14(comment)@example.com' WHERE {}",
        app.account_is("legacy1")
    ))
    .await;
    let device = app.device();
    assert_eq!(device.log_in("legacy1", PASSWORD).await.status(), StatusCode::OK);
    let receipt = device.request_deletion("A14(comment)@example.com").await;

    let done = app.wait_for_status(&receipt, "completed").await;
    assert_eq!(step_statuses(&done), ["done", "failed", "done"], "{done}");
    let entry = app.strings("SELECT body FROM ledger_entries").await.remove(0);
    let entry: Value = serde_json::from_str(&entry).unwrap();
    assert!(
        entry["data"]["confirmation_not_sent"]
            .as_str()
            .unwrap()
            .contains("undeliverable"),
        "{entry}"
    );
    assert_eq!(entry["data"]["confirmation_sent_at"], Value::Null);
    assert!(app.outbox_files().is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deletion_requests WHERE notify_email IS NOT NULL")
            .await,
        0,
        "the address is forgotten all the same"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM dead_jobs").await,
        0,
        "nothing died"
    );
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The mail server refuses the recipient for good (550): the same as an address the mailer
/// cannot take. Only the server stack has a mail server to refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_server_stack),
    ignore = "server stack: set ERASURE_TEST_DATABASE_URL and ERASURE_TEST_REDIS_URL"
)]
async fn a_recipient_the_mail_server_refuses_does_not_hold_the_deletion() {
    if server_urls().is_none() {
        return;
    }
    let app = spawn_app_on(Stack::Server).await;
    let device = app
        .signed_up_and_logged_in("bounce01", "bounce-me@example.org")
        .await;
    let receipt = device.request_deletion("bounce-me@example.org").await;
    let done = app.wait_for_status(&receipt, "completed").await;
    assert_eq!(step_statuses(&done), ["done", "failed", "done"], "{done}");
    let request = app.request().await;
    assert!(request.last_error.unwrap().contains("refused"));
    assert_eq!(app.count("SELECT COUNT(*) FROM dead_jobs").await, 0);
}

async fn a_dead_ledger_step_fails_the_request_visibly_until_it_is_retried(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[("ERASURE_QUEUE__MAX_ATTEMPTS", "2")],
    )
    .await;
    app.fail_statements("ledger_entries", "INSERT", None).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let receipt = device.request_deletion("mark@vsee.com").await;

    let failed = app.wait_for_status(&receipt, "failed").await;
    assert_eq!(step_statuses(&failed), ["done", "done", "failed"], "{failed}");
    let (_, page) = app.device().get_page(&format!("/deletions/{receipt}")).await;
    assert!(page.contains("failed"), "the receipt page says so: {page}");
    assert_eq!(
        metric(&app, "erasure_deletions{status=\"failed\"}").await,
        "erasure_deletions{status=\"failed\"} 1"
    );
    assert_eq!(metric(&app, "erasure_dead_jobs").await, "erasure_dead_jobs 1");
    let out = app.cli(&["jobs", "dead"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("ledger_entry") && listing.contains("injected failure"),
        "{listing}"
    );

    // Past the completion bound, the chain still verifies, but the missing entry is reported.
    backdate_request(&app, chrono::Duration::hours(2)).await;
    let out = app.cli(&["audit", "verify"]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{report}");
    let request_id = app.only_request_id().await.to_string();
    assert!(
        report.contains(&request_id) && report.contains("no ledger entry"),
        "{report}"
    );

    app.stop_failing_deletes("ledger_entries").await;
    let id = listing.split('\t').next().unwrap();
    let out = app.cli(&["jobs", "retry", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.wait_for_status(&receipt, "completed").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, 1);
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        metric(&app, "erasure_deletions{status=\"failed\"}").await,
        "erasure_deletions{status=\"failed\"} 0"
    );
}

/// The mail folder cannot be written (a file stands where it should be): every attempt fails,
/// the confirmation step dies, the request is failed; once fixed and retried it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_confirmation_step_fails_the_request_until_it_is_retried() {
    let app = spawn_on(
        Stack::Sqlite,
        erasure::startup::Roles::ALL,
        &[("ERASURE_QUEUE__MAX_ATTEMPTS", "2")],
    )
    .await;
    std::fs::write(app.outbox(), b"not a folder").unwrap();
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let receipt = device.request_deletion("mark@vsee.com").await;
    let failed = app.wait_for_status(&receipt, "failed").await;
    assert_eq!(step_statuses(&failed), ["done", "failed", "waiting"], "{failed}");
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, 0);

    std::fs::remove_file(app.outbox()).unwrap();
    let out = app.cli(&["jobs", "dead"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listing.contains("confirmation_email"), "{listing}");
    let out = app.cli(&["jobs", "retry", listing.split('\t').next().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.wait_for_status(&receipt, "completed").await;
    assert_eq!(app.outbox_files().len(), 1, "sent once");
}

async fn a_retrying_job_does_not_hold_up_other_deletions(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[
            ("ERASURE_QUEUE__CONCURRENCY", "1"),
            ("ERASURE_QUEUE__RETRY_BACKOFF_MS", "60000"),
            ("ERASURE_QUEUE__RETRY_BACKOFF_MAX_MS", "60000"),
        ],
    )
    .await;
    app.seed("stuck01", "stuck01@example.org", "free", 5).await;
    let stuck_id = app
        .count(&format!(
            "SELECT id FROM accounts WHERE {}",
            app.account_is("stuck01")
        ))
        .await;
    app.fail_deletes("devices", Some(&format!("OLD.account_id = {stuck_id}")))
        .await;
    let stuck = app.device();
    stuck.log_in("stuck01", PASSWORD).await;
    stuck.request_deletion("stuck01@example.org").await;
    eventually("the first purge to fail", Duration::from_secs(15), || async {
        (app.count("SELECT COUNT(*) FROM deletion_requests WHERE last_error IS NOT NULL")
            .await
            == 1)
            .then_some(())
    })
    .await;

    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let started = Instant::now();
    let receipt = device.request_deletion("mark@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;
    let took = started.elapsed();
    figure!("a deletion beside a job waiting out a 60 s backoff (concurrency 1) took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let stuck_status = app
        .strings("SELECT status FROM deletion_requests WHERE last_error IS NOT NULL")
        .await;
    assert_eq!(stuck_status, ["purging"], "the other one waits for its retry");
}

async fn a_step_the_queue_lost_is_sent_again(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    app.seed("lost01", "lost01@example.org", "free", 5).await;
    let account = erasure::services::accounts::find_by_vsee_id(
        app.state.env(),
        &erasure::domain::VseeId::parse("lost01").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    deletion::open_request(
        app.state.env(),
        &app.state.keys,
        &account,
        Actor::AccountHolder,
        Channel::Api,
    )
    .await
    .unwrap();
    // The relay handed the purge to the queue, and the queue lost it.
    app.execute("UPDATE outbox SET dispatched_at = created_at").await;

    let mut vars = app.vars.clone();
    vars.insert("ERASURE_QUEUE__STALL_AFTER_SECS".into(), "1".into());
    vars.insert("ERASURE_QUEUE__VACUUM_INTERVAL_SECS".into(), "1".into());
    let worker = Process::start(&["worker"], &vars, false);
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE status = 'completed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert!(worker.log().contains("sending it again"), "{}", worker.log());
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, 1);
}

crate::on_both_stacks!(
    an_undeliverable_confirmation_does_not_hold_the_deletion,
    a_dead_ledger_step_fails_the_request_visibly_until_it_is_retried,
    a_retrying_job_does_not_hold_up_other_deletions,
    a_step_the_queue_lost_is_sent_again,
);
