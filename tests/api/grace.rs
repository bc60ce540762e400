//! The grace period (`deletion.grace_hours`): a confirmed deletion waits `scheduled`, its
//! holder can undo it from the emailed link, an agent can undo a paid account's, and the purge
//! starts when the test's clock says the time is up, through the queue.

use std::time::Duration;

use erasure::{clock::Clock, startup::Roles};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{helpers::*, staff::staff_device, tickets::ticket_from};

const GRACE: (&str, &str) = ("ERASURE_DELETION__GRACE_HOURS", "48");

/// How many accounts have this VSee ID (seeded accounts come with contacts, accounts of
/// their own, so the table's count will not do).
async fn holders(app: &TestApp, vsee_id: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM accounts WHERE {}",
        app.account_is(vsee_id)
    ))
    .await
}

/// The token of the cancel link in the scheduled notice.
fn cancel_token_in(eml: &str) -> String {
    let start = eml.find("/deletion/cancel/").expect("a cancel link") + "/deletion/cancel/".len();
    eml[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn scheduled_notice(app: &TestApp) -> String {
    app.wait_for_mail(|eml| eml.contains("Subject: Your account will be deleted on"))
        .await
}

/// Long enough for the relay (every 50 ms in tests) and the workers to have pushed and run a
/// purge that was wrongly let through.
async fn let_the_queue_run() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

async fn a_scheduled_deletion_is_undone_from_the_emailed_link(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[GRACE]).await;
    let account = app.seed("grace01", "grace1@vsee.com", "free", 7).await;
    let device = app.device();
    assert_eq!(device.log_in("grace01", PASSWORD).await.status(), StatusCode::OK);

    let r = device.confirm_deletion("grace1@vsee.com").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "scheduled");
    let purge_after: chrono::DateTime<chrono::Utc> = body["purge_after"].as_str().unwrap().parse().unwrap();
    let expected = app.clock.now() + chrono::Duration::hours(48);
    assert!(
        (purge_after - expected).num_seconds().abs() < 5,
        "{purge_after} vs {expected}"
    );
    let receipt = body["receipt_id"].as_str().unwrap().to_owned();

    // Log-in stopped and the session ended at once, as without a grace period.
    assert_eq!(device.me().await.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = error_code(app.device().log_in("grace01", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The holder is told the date and given the link; the status says when.
    let eml = scheduled_notice(&app).await;
    assert!(eml.contains("To: grace1@vsee.com"), "{eml}");
    assert!(
        eml.contains(&purge_after.format("%Y-%m-%d %H:%M UTC").to_string()),
        "{eml}"
    );
    let token = cancel_token_in(&eml);
    let status = app
        .device()
        .get_json(&format!("/api/v1/deletions/{receipt}"))
        .await;
    assert_eq!(status["status"], "scheduled");
    assert!(status["purge_after"].is_string(), "{status}");
    let (code, page) = app.device().get_page(&format!("/deletions/{receipt}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("Purge scheduled for"), "{page}");

    // Nothing is purged while the time runs.
    let_the_queue_run().await;
    assert_eq!(holders(&app, "grace01").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE sender_id = {}",
            account.account_id
        ))
        .await,
        7
    );

    // The link: a page with the date and a button; pressing it cancels.
    let holder = app.device();
    let link = format!("/deletion/cancel/{token}");
    let (code, page) = holder.get_page(&link).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("CANCEL MY DELETION"), "{page}");
    let r = holder.submit_form(&link, &link, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Your deletion is cancelled"));

    // Log-in is back, the data is all there, and the ledger says who undid it.
    assert_eq!(
        app.device().log_in("grace01", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE sender_id = {}",
            account.account_id
        ))
        .await,
        7
    );
    assert_eq!(
        app.strings("SELECT event || '|' || actor_kind || '|' || outcome FROM ledger_entries")
            .await,
        ["deletion_cancelled|account_holder|cancelled"]
    );
    assert_eq!(app.verify_ledger().await.unwrap(), 1);
    let status = app
        .device()
        .get_json(&format!("/api/v1/deletions/{receipt}"))
        .await;
    assert_eq!(status["status"], "cancelled");
    assert!(status["cancelled_at"].is_string(), "{status}");

    // The link works once; and the time running out later purges nothing.
    let (status, code) = error_code(
        app.device()
            .post_json("/api/v1/deletions/cancel", json!({ "token": token }))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    app.clock.advance(chrono::Duration::hours(49));
    let_the_queue_run().await;
    assert_eq!(holders(&app, "grace01").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE job_kind = 'purge'")
            .await,
        0
    );

    // An unknown token is not found and changes nothing.
    let (status, code) = error_code(
        app.device()
            .post_json("/api/v1/deletions/cancel", json!({ "token": "not-a-token" }))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

async fn a_scheduled_deletion_is_purged_when_its_time_is_up_and_the_link_then_refused(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[GRACE]).await;
    app.seed("grace02", "grace2@vsee.com", "free", 3).await;
    let device = app.device();
    assert_eq!(device.log_in("grace02", PASSWORD).await.status(), StatusCode::OK);

    // Through the seed's screens: the page says when, instead of "has been deleted".
    let r = device
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "grace2@vsee.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Your account will be deleted on"), "{page}");
    assert!(!page.contains("has been deleted"), "{page}");
    let receipt = app.request().await;
    assert_eq!(receipt.status.as_str(), "scheduled");
    let token = cancel_token_in(&scheduled_notice(&app).await);

    let_the_queue_run().await;
    assert_eq!(holders(&app, "grace02").await, 1);
    assert_eq!(app.request().await.purge_started_at, None);

    // An hour short of the end: still waiting.
    app.clock.advance(chrono::Duration::hours(47));
    let_the_queue_run().await;
    assert_eq!(app.request().await.status.as_str(), "scheduled");

    // The time is up: the queue runs the purge, the email and the ledger entry.
    app.clock.advance(chrono::Duration::hours(2));
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE status = 'completed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(holders(&app, "grace02").await, 0);
    let request = app.request().await;
    assert!(request.purge_started_at.unwrap() >= request.purge_after.unwrap());

    // The link has expired: the API refuses with its code, the page says so, nothing changes.
    let (status, code) = error_code(
        app.device()
            .post_json("/api/v1/deletions/cancel", json!({ "token": token }))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "grace_period_over")
    );
    let (code, page) = app.device().get_page(&format!("/deletion/cancel/{token}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("can no longer be cancelled"), "{page}");
    assert_eq!(
        app.strings("SELECT event FROM ledger_entries ORDER BY seq").await,
        ["account_deleted"]
    );
}

async fn an_agent_cancels_a_paid_accounts_scheduled_deletion_with_a_reason(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[GRACE]).await;
    app.seed("paidgrace", "paidgrace@vsee.com", "paid", 2).await;
    let agent = staff_device(&app, "agent").await;
    let (id, _) = ticket_from(&app, &agent, "paidgrace@vsee.com", "grace@mail.example").await;
    let r = agent
        .post_json(
            &format!("/api/v1/tickets/{id}/verification"),
            json!({ "reason": "called back on the number on file" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = agent
        .post_json(&format!("/api/v1/tickets/{id}/approval"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "scheduled");

    let cancellation = format!("/api/v1/tickets/{id}/deletion/cancellation");
    // A reason is required; a refusal changes nothing.
    let (status, code) = error_code(agent.post_json(&cancellation, json!({ "reason": "  " })).await).await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    assert_eq!(app.request().await.status.as_str(), "scheduled");

    let r = agent
        .post_json(&cancellation, json!({ "reason": "the customer called to stay" }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "cancelled");
    let request = app.request().await;
    assert_eq!(
        request.cancel_reason.as_deref(),
        Some("the customer called to stay")
    );
    assert!(request.cancelled_by.unwrap().starts_with("agent:"));
    assert_eq!(
        app.device().log_in("paidgrace", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.strings(
            "SELECT actor_kind || '|' || outcome FROM ledger_entries WHERE event = 'deletion_cancelled'"
        )
        .await,
        ["agent|cancelled"]
    );
    let (status, code) = error_code(agent.post_json(&cancellation, json!({ "reason": "again" })).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (code, page) = agent.get_page(&format!("/staff/tickets/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("the customer called to stay"), "{page}");
}

async fn without_a_grace_period_the_seed_flow_is_unchanged(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("nograce", "nograce@vsee.com").await;
    let r = device.confirm_deletion("nograce@vsee.com").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert!(body["purge_after"].is_null(), "{body}");
    app.wait_for_status(body["receipt_id"].as_str().unwrap(), "completed")
        .await;
    assert!(
        app.outbox_files()
            .iter()
            .all(|(_, eml)| !eml.contains("/deletion/cancel/")),
        "no cancel link is sent"
    );
}

crate::on_both_stacks!(
    a_scheduled_deletion_is_undone_from_the_emailed_link,
    a_scheduled_deletion_is_purged_when_its_time_is_up_and_the_link_then_refused,
    an_agent_cancels_a_paid_accounts_scheduled_deletion_with_a_reason,
    without_a_grace_period_the_seed_flow_is_unchanged,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_browser),
    ignore = "browser: set ERASURE_TEST_CHROMEDRIVER to chromedriver (.ci/setup installs chromium-driver)"
)]
async fn the_grace_period_pages_work_in_a_browser() {
    let app = spawn_on(Stack::Sqlite, Roles::ALL, &[GRACE]).await;
    app.seed("browse01", "browse1@vsee.com", "free", 2).await;
    app.seed("browsepaid", "browsepaid@vsee.com", "paid", 2).await;
    let browser = Browser::start("the_grace_period_pages_work_in_a_browser").await;

    // The holder confirms; the page says when, and mails the link.
    browser.go(&format!("{}/login", app.address)).await;
    browser.type_into("#vsee_id", "browse01").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("DELETE MY ACCOUNT").await;
    browser.go(&format!("{}/account/delete", app.address)).await;
    browser.type_into("#email", "browse1@vsee.com").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Your account will be deleted on").await;
    browser.screenshot("grace-1-scheduled").await;

    // The emailed link: a button that undoes it; then the holder logs in again.
    let token = cancel_token_in(&scheduled_notice(&app).await);
    browser
        .go(&format!("{}/deletion/cancel/{token}", app.address))
        .await;
    browser.wait_for_text("CANCEL MY DELETION").await;
    browser.screenshot("grace-2-cancel-link").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Your deletion is cancelled").await;
    browser.click("a[href='/login']").await;
    browser.type_into("#vsee_id", "browse01").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("DELETE MY ACCOUNT").await;

    // An agent cancels an approved termination from the ticket's page, with a reason.
    let agent = staff_device(&app, "agent").await;
    let (id, _) = ticket_from(&app, &agent, "browsepaid@vsee.com", "browse@mail.example").await;
    agent
        .post_json(
            &format!("/api/v1/tickets/{id}/verification"),
            json!({ "reason": "called back" }),
        )
        .await;
    let r = agent
        .post_json(&format!("/api/v1/tickets/{id}/approval"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    browser.go(&format!("{}/staff/login", app.address)).await;
    browser.type_into("#email", "agent@staff.example").await;
    browser.type_into("#password", crate::staff::STAFF_PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Tickets").await;
    browser.go(&format!("{}/staff/tickets/{id}", app.address)).await;
    browser.wait_for_text("CANCEL DELETION").await;
    browser
        .type_into("#cancel-reason", "the customer called to stay")
        .await;
    browser
        .click("form[aria-label='Cancel the deletion'] button")
        .await;
    let page = browser
        .wait_for_text("Deletion cancelled: the account can log in again.")
        .await;
    assert!(page.contains("the customer called to stay"), "{page}");
    browser.screenshot("grace-3-agent-cancelled").await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "the pages logged errors (CSP?): {errors:?}");
}
