//! Every refusal answers with a stable code and changes nothing.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The rows a refused deletion must not have written, and the account still usable.
async fn assert_nothing_changed(app: &TestApp, device: &Device) {
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM accounts WHERE status = 'active'")
            .await,
        app.count("SELECT COUNT(*) FROM accounts").await
    );
    assert_eq!(device.me().await.status(), StatusCode::OK, "still logged in");
}

async fn a_mistyped_email_is_refused_and_changes_nothing(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;

    let (status, code) = error_code(device.confirm_deletion("mark+09@vsee.com").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "confirmation_mismatch")
    );
    assert_nothing_changed(&app, &device).await;

    let r = device
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "someone@else.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("not the email of this account"));
    assert_nothing_changed(&app, &device).await;
}

async fn a_paid_account_is_sent_to_support(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.seed("paidmark", "paid@vsee.com", "paid", 3).await;
    let device = app.device();
    assert_eq!(device.log_in("paidmark", PASSWORD).await.status(), StatusCode::OK);

    let r = device.confirm_deletion("paid@vsee.com").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "paid_account");
    assert_eq!(body["support_email"], "help@vsee.com");
    assert_nothing_changed(&app, &device).await;

    let (status, html) = device.get_page("/account/delete").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("mailto:help@vsee.com"));
    assert!(!html.contains("To confirm deletion, please type your email."));
}

async fn a_stale_log_in_must_prove_the_password_again(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;
    app.clock.advance(Duration::minutes(16));

    let (status, code) = error_code(device.confirm_deletion("mark+08@vsee.com").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );
    assert_nothing_changed(&app, &device).await;

    // The page asks for the password; a wrong one changes nothing either.
    let (_, html) = device.get_page("/account/delete").await;
    assert!(html.contains("please enter your password again"));
    let r = device
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "mark+08@vsee.com"), ("password", "not my password")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_nothing_changed(&app, &device).await;
    // The right password with the wrong email: refused, and the log-in is still stale.
    let r = device
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "mark+09@vsee.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_nothing_changed(&app, &device).await;
    let (status, code) = error_code(device.confirm_deletion("mark+08@vsee.com").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );

    let (status, code) = error_code(device.reauthenticate("not my password").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert_eq!(
        device.reauthenticate(PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        device.confirm_deletion("mark+08@vsee.com").await.status(),
        StatusCode::ACCEPTED
    );
}

async fn a_stale_log_in_can_delete_from_the_page_with_its_password(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;
    app.clock.advance(Duration::minutes(30));
    let r = device
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "mark+08@vsee.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Your account has been deleted."));
}

async fn deleting_twice_is_refused_without_a_second_request(stack: Stack) {
    let app = spawn_app_without_workers(stack).await;
    let laptop = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;
    let phone = app.device();
    phone.log_in("mark08", PASSWORD).await;
    let (a, b) = tokio::join!(
        laptop.confirm_deletion("mark+08@vsee.com"),
        phone.confirm_deletion("mark+08@vsee.com")
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    // One wins; the other finds its session already ended (or the account locked).
    assert_eq!(statuses[0], StatusCode::ACCEPTED);
    assert!(
        matches!(statuses[1], StatusCode::UNAUTHORIZED | StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 1);
}

async fn deletion_needs_a_session(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let (status, code) = error_code(app.device().confirm_deletion("x@y.com").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

crate::on_both_stacks!(
    a_mistyped_email_is_refused_and_changes_nothing,
    a_paid_account_is_sent_to_support,
    a_stale_log_in_must_prove_the_password_again,
    a_stale_log_in_can_delete_from_the_page_with_its_password,
    deleting_twice_is_refused_without_a_second_request,
    deletion_needs_a_session,
);
