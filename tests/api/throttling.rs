//! Brute force is slowed down without letting anyone lock the owner out (ASVS 2.2.1): failed
//! log-ins are counted per (login, client address) and per address, in the database, and the
//! right password from a client that has not failed is never refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const BEHIND_PROXY: &[(&str, &str)] = &[("ERASURE_SERVER__CLIENT_ADDRESS_HEADER", "X-Forwarded-For")];
const ATTACKER: &str = "203.0.113.9";
const OWNER: &str = "198.51.100.7";

async fn log_in_from(device: &Device, from: &str, vsee_id: &str, password: &str) -> reqwest::Response {
    device
        .client
        .post(device.url("/api/v1/sessions"))
        .header("x-forwarded-for", format!("10.1.1.1, {from}"))
        .json(&json!({ "vsee_id": vsee_id, "password": password }))
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> i64 {
    r.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn an_attacker_elsewhere_cannot_lock_the_owner_out(stack: Stack) {
    let app = spawn_on(stack, erasure::startup::Roles::ALL, BEHIND_PROXY).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let attacker = app.device();
    let mut refused = 0;
    for _ in 0..12 {
        let r = log_in_from(&attacker, ATTACKER, "mark08", "guess guess").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 6, "the attacker is slowed down ({refused} refused)");
    let r = log_in_from(&attacker, ATTACKER, "mark08", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even with the right password, from there"
    );

    // The owner, from an address that has not failed, gets in, re-authenticates and deletes.
    let owner = app.device();
    assert_eq!(
        log_in_from(&owner, OWNER, "mark08", PASSWORD).await.status(),
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::minutes(16));
    let r = owner
        .client
        .post(owner.url("/api/v1/me/reauthentication"))
        .header("x-forwarded-for", OWNER)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        owner.confirm_deletion("mark@vsee.com").await.status(),
        StatusCode::ACCEPTED
    );
}

async fn each_further_failure_doubles_the_wait(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let device = app.device();
    for _ in 0..5 {
        assert_eq!(
            device.log_in("mark08", "guess guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let r = device.log_in("mark08", "guess guess").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&r);
        waits.push(wait);
        app.clock.advance(chrono::Duration::seconds(wait));
        assert_eq!(
            device.log_in("mark08", "guess guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(waits, [1, 2, 4, 8]);
}

/// Without `server.client_address_header`, a client cannot pick its own address.
async fn a_forged_forwarding_header_is_ignored(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let attacker = app.device();
    for i in 0..5 {
        log_in_from(&attacker, &format!("192.0.2.{i}"), "mark08", "guess guess").await;
    }
    let r = log_in_from(&attacker, "192.0.2.99", "mark08", "guess guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn one_address_failing_for_many_logins_waits(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[
            ("ERASURE_SERVER__CLIENT_ADDRESS_HEADER", "X-Forwarded-For"),
            ("ERASURE_SECURITY__LOGIN_MAX_FAILURES", "1"),
        ],
    )
    .await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let sprayer = app.device();
    for i in 0..20 {
        log_in_from(&sprayer, ATTACKER, &format!("user{i:02}"), "guess guess").await;
    }
    let r = log_in_from(&sprayer, ATTACKER, "fresh01", "guess guess").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is spraying"
    );
    assert_eq!(
        log_in_from(&app.device(), OWNER, "mark08", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn pages_say_how_long_to_wait(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let browser = app.device();
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            browser
                .submit_form(
                    "/login",
                    "/login",
                    &[("vsee_id", "mark08"), ("password", "guess guess")],
                )
                .await,
        );
    }
    let r = last.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) >= 1);
    assert!(r.text().await.unwrap().contains("try again in"));
}

async fn reset_links_are_throttled_per_login_and_per_address(stack: Stack) {
    let app = spawn_on(
        stack,
        erasure::startup::Roles::ALL,
        &[
            ("ERASURE_SERVER__CLIENT_ADDRESS_HEADER", "X-Forwarded-For"),
            ("ERASURE_SECURITY__RESET_MAX_REQUESTS", "2"),
        ],
    )
    .await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let browser = app.device();
    let ask = |login: &'static str, from: &'static str| {
        let browser = &browser;
        async move {
            let (_, html) = browser.get_page("/forgot-password").await;
            browser
                .client
                .post(browser.url("/forgot-password"))
                .header("x-forwarded-for", from)
                .form(&[("csrf_token", csrf_token(&html).as_str()), ("login", login)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(ask("mark08", ATTACKER).await.status(), StatusCode::OK);
    assert_eq!(ask("mark08", OWNER).await.status(), StatusCode::OK);
    let r = ask("MARK08", "192.0.2.1").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "per login, whatever the address"
    );
    assert!(retry_after(&r) >= 1);
    assert_eq!(
        ask("someone", "192.0.2.1").await.status(),
        StatusCode::OK,
        "other logins are not held up"
    );
}

/// Two API processes share one count: failures split across them add up.
async fn two_processes_enforce_one_limit(stack: Stack) {
    let app = spawn_state_only(stack, &[]).await;
    app.seed_small("mark08", "mark@vsee.com").await;
    let mut vars = app.vars.clone();
    vars.insert("ERASURE_SERVER__ADDR".into(), "127.0.0.1:0".into());
    let a = Process::start(&["serve", "--no-workers"], &vars, true);
    let b = Process::start(&["serve", "--no-workers"], &vars, true);
    let client = reqwest::Client::new();
    let log_in = |base: String, password: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/api/v1/sessions"))
                .json(&json!({ "vsee_id": "mark08", "password": password }))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for i in 0..5 {
        let base = if i % 2 == 0 { a.address() } else { b.address() };
        assert_eq!(log_in(base, "guess guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(log_in(a.address(), PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(log_in(b.address(), PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
}

crate::on_both_stacks!(
    an_attacker_elsewhere_cannot_lock_the_owner_out,
    each_further_failure_doubles_the_wait,
    a_forged_forwarding_header_is_ignored,
    one_address_failing_for_many_logins_waits,
    pages_say_how_long_to_wait,
    reset_links_are_throttled_per_login_and_per_address,
    two_processes_enforce_one_limit,
);
