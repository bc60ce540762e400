use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn sign_up_refuses_bad_input_with_a_stable_code_and_creates_nothing(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    let cases = [
        json!({ "vsee_id": "ab", "email": "a@b.com", "password": PASSWORD }),
        json!({ "vsee_id": "mark08", "email": "not-an-email", "password": PASSWORD }),
        json!({ "vsee_id": "mark08", "email": "a@b.com", "password": "short" }),
        json!({ "vsee_id": "mark08", "email": "a@b.com" }),
        json!("not an object"),
    ];
    for body in cases {
        let r = device
            .client
            .post(device.url("/api/v1/accounts"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{body}"
        );
    }
    let r = device
        .client
        .post(device.url("/api/v1/accounts"))
        .body("{oops")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "invalid_input");
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 0);
}

async fn a_taken_vsee_id_or_email_is_a_conflict(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    assert_eq!(
        device.sign_up("mark08", "mark@vsee.com").await.status(),
        StatusCode::CREATED
    );
    let (status, code) = error_code(device.sign_up("MARK08", "other@vsee.com").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (status, code) = error_code(device.sign_up("other", "Mark@VSee.com").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 1);
}

async fn wrong_credentials_get_one_answer_and_repeated_failures_are_rate_limited(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;

    let r = app.device().log_in("mark08", PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("erasure_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http public URL: {cookie}");

    let wrong_password = device.log_in("mark08", "wrong password").await;
    let unknown_id = device.log_in("nobody", "wrong password").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_id.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password.text().await.unwrap(),
        unknown_id.text().await.unwrap()
    );

    for _ in 0..4 {
        device.log_in("mark08", "wrong password").await;
    }
    // This client has failed five times for this ID: it now waits, right password or not.
    let r = device.log_in("mark08", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(wait, 1, "the first wait is short");
    assert_eq!(error_code(r).await.1, "rate_limited");

    app.clock.advance(chrono::Duration::seconds(wait));
    assert_eq!(device.log_in("mark08", PASSWORD).await.status(), StatusCode::OK);
}

async fn the_profile_changes_and_credentials_need_the_current_password(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;

    let r = device
        .patch_me(json!({ "first_name": "Marcus", "offline_notification_email": "Off@Line.com", "offline_notification_enabled": true }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = device.me().await.json().await.unwrap();
    assert_eq!(me["first_name"], "Marcus");
    assert_eq!(me["last_name"], "Quillfeather");
    assert_eq!(
        me["offline_notification"],
        json!({ "email": "off@line.com", "enabled": true })
    );

    let (status, code) = error_code(
        device
            .patch_me(json!({ "password": "a brand new one", "first_name": "X" }))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        "a new password needs the current one"
    );
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, code) = error_code(
        device
            .patch_me(json!({ "email": "new@vsee.com", "first_name": "X" }))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "reauthentication_required"),
        "a log-in older than the window needs the current password to change the email"
    );
    let (status, code) = error_code(
        device
            .patch_me(json!({ "email": "new@vsee.com", "current_password": "wrong one" }))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let me: Value = device.me().await.json().await.unwrap();
    assert_eq!(
        (me["email"].as_str(), me["first_name"].as_str()),
        (Some("mark@vsee.com"), Some("Marcus")),
        "nothing half-applied"
    );

    let r = device
        .patch_me(
            json!({ "email": "new@vsee.com", "password": "a brand new one", "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.device().log_in("mark08", "a brand new one").await.status(),
        StatusCode::OK
    );

    let (status, _) = error_code(
        device
            .patch_me(json!({ "offline_notification_email": "nope" }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn forgot_password_emails_a_one_time_link(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let browser = app.device();

    let r = browser
        .submit_form(
            "/forgot-password",
            "/forgot-password",
            &[("login", "nobody@vsee.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let unknown_answer = r.text().await.unwrap();
    app.wait_for_notices().await;
    assert!(
        app.outbox_files().is_empty(),
        "no account, no email — and the same page"
    );
    let r = browser
        .submit_form("/forgot-password", "/forgot-password", &[("login", "MARK08")])
        .await;
    let known_answer = r.text().await.unwrap();
    assert!(known_answer.contains("If an account matches"));
    let strip_token = |page: &str| page.split("csrf_token").next().unwrap_or_default().to_owned();
    assert_eq!(strip_token(&known_answer), strip_token(&unknown_answer));

    let eml = app
        .wait_for_mail(|eml| eml.contains("/reset-password?token="))
        .await;
    assert!(eml.contains("To: mark@vsee.com"), "{eml}");
    let token = reset_token_in(&eml);

    let page = format!("/reset-password?token={token}");
    let r = browser
        .submit_form(
            &page,
            "/reset-password",
            &[("token", &token), ("new_password", "fresh password 1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your password has been changed.")
    );
    assert_eq!(
        app.device().log_in("mark08", "fresh password 1").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.device().log_in("mark08", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.wait_for_mail(|eml| eml.contains("Your password was changed"))
        .await;

    let r = browser
        .submit_form(
            &page,
            "/reset-password",
            &[("token", &token), ("new_password", "another one 2")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the link works once"
    );

    app.clock.advance(chrono::Duration::minutes(31));
    browser
        .submit_form(
            "/forgot-password",
            "/forgot-password",
            &[("login", "mark@vsee.com")],
        )
        .await;
    let newest = app
        .wait_for_mail(|b| b.contains("/reset-password?token=") && !b.contains(&token))
        .await;
    let token2 = reset_token_in(&newest);
    app.clock.advance(chrono::Duration::minutes(31));
    let r = browser
        .submit_form(
            "/forgot-password",
            "/reset-password",
            &[("token", &token2), ("new_password", "too late 123")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "the link expires");
}

async fn the_api_is_described_and_the_probes_answer(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    let spec = device.get_json("/api/openapi.json").await;
    for path in [
        "/v1/accounts",
        "/v1/sessions",
        "/v1/sessions/current",
        "/v1/me",
        "/v1/me/deletion",
        "/v1/deletions/{receipt_id}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "spec lacks {path}");
    }
    assert_eq!(device.get_page("/api/docs").await.0, StatusCode::OK);
    assert_eq!(device.get_page("/healthz").await.0, StatusCode::OK);
    assert_eq!(device.get_page("/readyz").await.0, StatusCode::OK);
    let (status, code) = error_code(
        device
            .client
            .get(device.url("/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(
        erasure::startup::Roles::ALL,
        &[("ERASURE_SERVER__PUBLIC_URL", "https://messenger.example.com")],
    )
    .await;
    let device = app.device();
    device.sign_up("mark08", "mark@vsee.com").await;
    let r = device.log_in("mark08", PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let r = device.client.get(device.url("/login")).send().await.unwrap();
    let csrf_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.starts_with("erasure_csrf=") && csrf_cookie.contains("Secure"),
        "{csrf_cookie}"
    );
}

/// The profile comes from the session's own account, and only while the session lives.
async fn a_session_reads_its_own_active_account_until_it_expires(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let ann = app
        .signed_up_and_logged_in("annsession", "ann.session@vsee.com")
        .await;
    let bob = app
        .signed_up_and_logged_in("bobsession", "bob.session@vsee.com")
        .await;
    for (device, vsee_id) in [(&ann, "annsession"), (&bob, "bobsession")] {
        let r = device.me().await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["vsee_id"], vsee_id);
    }
    // An account being deleted is read by no session it still has (the deletion also ends
    // them; this is the read's own check).
    app.execute(&format!(
        "UPDATE accounts SET status = 'deleting' WHERE {}",
        app.account_is("bobsession")
    ))
    .await;
    let (status, code) = error_code(bob.me().await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(ann.me().await.status(), StatusCode::OK);
    // A minute before the end it still reads (the clock also runs on); at the end it does not.
    let ttl = chrono::Duration::hours(app.state.settings.security.session_ttl_hours);
    app.clock.advance(ttl - chrono::Duration::minutes(1));
    assert_eq!(ann.me().await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(1));
    for device in [&ann, &bob] {
        let (status, code) = error_code(device.me().await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        );
    }
}

crate::on_both_stacks!(
    sign_up_refuses_bad_input_with_a_stable_code_and_creates_nothing,
    a_taken_vsee_id_or_email_is_a_conflict,
    wrong_credentials_get_one_answer_and_repeated_failures_are_rate_limited,
    the_profile_changes_and_credentials_need_the_current_password,
    forgot_password_emails_a_one_time_link,
    the_api_is_described_and_the_probes_answer,
    a_session_reads_its_own_active_account_until_it_expires,
);
