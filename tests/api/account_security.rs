//! Password reset and account changes (ASVS V2.5, V3.3): only the newest link works, a new
//! password ends every other session and link, sensitive changes need a recent log-in and are
//! announced, and a reset request tells nothing about whether the account exists.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use erasure::{
    clock::ManualClock,
    config::Settings,
    db::Database,
    error::AppError,
    services::{password_reset, sessions},
    startup::{Application, Roles},
};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn ask_for_reset(app: &TestApp, login: &str) -> String {
    let before: Vec<String> = app.outbox_files().into_iter().map(|(_, eml)| eml).collect();
    let r = app
        .device()
        .submit_form("/forgot-password", "/forgot-password", &[("login", login)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let eml = app
        .wait_for_mail(|eml| eml.contains("/reset-password?token=") && !before.iter().any(|b| b == eml))
        .await;
    reset_token_in(&eml)
}

async fn reset(app: &TestApp, token: &str, password: &str) -> StatusCode {
    app.device()
        .submit_form(
            &format!("/reset-password?token={token}"),
            "/reset-password",
            &[("token", token), ("new_password", password)],
        )
        .await
        .status()
}

async fn only_the_newest_reset_link_works(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let first = ask_for_reset(&app, "mark08").await;
    let second = ask_for_reset(&app, "mark@vsee.com").await;
    assert_ne!(first, second);
    assert_eq!(
        reset(&app, &first, "first new password").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(reset(&app, &second, "second new password").await, StatusCode::OK);

    // Changing the password ends every link asked for before.
    let third = ask_for_reset(&app, "mark08").await;
    let device = app.device();
    assert_eq!(
        device.log_in("mark08", "second new password").await.status(),
        StatusCode::OK
    );
    let r = device
        .patch_me(json!({ "password": "third new password", "current_password": "second new password" }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        reset(&app, &third, "fourth new password").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

async fn a_new_password_ends_every_other_session_and_is_announced(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let laptop = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    let phone = app.device();
    assert_eq!(phone.log_in("mark08", PASSWORD).await.status(), StatusCode::OK);

    let r = laptop
        .patch_me(json!({ "password": "a brand new one", "current_password": PASSWORD }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        laptop.me().await.status(),
        StatusCode::OK,
        "the session that changed it stays"
    );
    assert_eq!(
        phone.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "every other one ends"
    );
    let eml = app
        .wait_for_mail(|eml| eml.contains("Your password was changed"))
        .await;
    assert!(eml.contains("To: mark@vsee.com"));
    assert!(!eml.contains("a brand new one"));
}

async fn a_new_email_needs_a_recent_log_in_and_is_announced_to_the_old_address(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    app.clock.advance(chrono::Duration::minutes(16));
    for body in [
        json!({ "email": "new@vsee.com" }),
        json!({ "offline_notification_email": "off@line.com" }),
    ] {
        let (status, code) = error_code(device.patch_me(body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "reauthentication_required"),
            "{body}"
        );
    }
    // A name needs nothing more.
    assert_eq!(
        device.patch_me(json!({ "first_name": "Marcus" })).await.status(),
        StatusCode::OK
    );

    // With the current password (or right after logging in) it goes through, and the old
    // address hears of it.
    let r = device
        .patch_me(json!({ "email": "new@vsee.com", "current_password": PASSWORD }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let eml = app
        .wait_for_mail(|eml| eml.contains("Your email address was changed"))
        .await;
    assert!(eml.contains("To: mark@vsee.com"), "{eml}");
    // The worker forgets the address once the mail server has taken the email, a moment after
    // the sink stored it.
    eventually(
        "the old address forgotten once told",
        Duration::from_secs(10),
        || async {
            (app.count("SELECT COUNT(*) FROM notifications WHERE recipient IS NOT NULL")
                .await
                == 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(device.log_in("mark08", PASSWORD).await.status(), StatusCode::OK);
    let r = device
        .patch_me(json!({ "offline_notification_email": "off@line.com" }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a fresh log-in is enough");
    app.wait_for_mail(|eml| eml.contains("offline-notification address was changed"))
        .await;
}

/// An application on `app`'s database (no HTTP, no workers) that records every statement it
/// runs in the list returned beside it.
async fn observed(app: &TestApp) -> (Application, Arc<Mutex<Vec<String>>>) {
    let settings = Settings::load_from(&app.vars).unwrap();
    let mut db = Database::connect(&settings).await.unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    db.observe_statements(move |_, sql| record.lock().unwrap().push(sql.to_owned()));
    let observed = Application::build_with_database(
        settings,
        Arc::new(ManualClock::starting_now()),
        Roles {
            http: false,
            workers: false,
        },
        db,
    )
    .await
    .unwrap();
    (observed, seen)
}

/// The answer to a reset request does the same work whether or not an account matched: the
/// same statements, in the same order, so its timing cannot tell. (The bench measures the
/// time itself.)
async fn a_reset_request_runs_the_same_statements_whether_or_not_the_account_exists(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    app.seed_small("mark08", "mark@vsee.com").await;
    let (observed, seen) = observed(&app).await;
    let state = observed.state();
    let mut runs = Vec::new();
    for login in ["mark08", "nobody99", "mark@vsee.com", "nobody@vsee.com"] {
        seen.lock().unwrap().clear();
        password_reset::request(state.env(), &state.throttle, login, "192.0.2.7")
            .await
            .unwrap();
        runs.push(seen.lock().unwrap().clone());
    }
    assert!(!runs[0].is_empty());
    assert_eq!(runs[0], runs[1], "by VSee ID");
    assert_eq!(runs[2], runs[3], "by email");
}

/// A refused log-in runs the same statements whether the ID is unknown or the password wrong;
/// a log-in reads the account and its data key in one statement, never the key on its own.
async fn a_log_in_reads_the_account_with_its_key_and_a_refusal_tells_nothing(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    app.seed_small("nora08", "nora@vsee.com").await;
    let (observed, seen) = observed(&app).await;
    let state = observed.state();
    let attempt = sessions::Attempt {
        throttle: &state.throttle,
        address: "192.0.2.8",
    };
    let log_in = async |vsee_id: &str, password: &str| {
        seen.lock().unwrap().clear();
        let outcome = sessions::log_in(state.env(), attempt, state.session_ttl(), vsee_id, password).await;
        (outcome, seen.lock().unwrap().clone())
    };
    let (wrong, wrong_password) = log_in("nora08", "not the password").await;
    let (unknown, unknown_id) = log_in("nobody08", "not the password").await;
    assert!(matches!(wrong, Err(AppError::InvalidCredentials)), "{wrong:?}");
    assert!(
        matches!(unknown, Err(AppError::InvalidCredentials)),
        "{unknown:?}"
    );
    assert!(!wrong_password.is_empty());
    assert_eq!(wrong_password, unknown_id);

    let (logged_in, statements) = log_in("nora08", PASSWORD).await;
    let (account, _token) = logged_in.unwrap();
    assert_eq!(
        (account.vsee_id.as_str(), account.email.as_str()),
        ("nora08", "nora@vsee.com")
    );
    let key_reads: Vec<&String> = statements
        .iter()
        .filter(|sql| sql.contains("data_keys"))
        .collect();
    assert_eq!(key_reads.len(), 1, "{statements:#?}");
    assert!(key_reads[0].contains("\"accounts\""), "{statements:#?}");
}

crate::on_both_stacks!(
    only_the_newest_reset_link_works,
    a_log_in_reads_the_account_with_its_key_and_a_refusal_tells_nothing,
    a_new_password_ends_every_other_session_and_is_announced,
    a_new_email_needs_a_recent_log_in_and_is_announced_to_the_old_address,
    a_reset_request_runs_the_same_statements_whether_or_not_the_account_exists,
);
