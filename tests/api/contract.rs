//! The spec says what the server does, and the edge answers as HTTP says it should: strict
//! types, documented statuses, `Allow` on 405, no internal names in errors, the headers that
//! keep responses private, and forms accepted only from our own pages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn strings_refuse_other_json_types_and_errors_name_no_internal_type(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    for body in [
        json!({ "first_name": false }),
        json!({ "last_name": 12 }),
        json!({ "email": ["a@b.com"] }),
    ] {
        let r = device.patch_me(body.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["code"], "invalid_input");
        let message = error["message"].as_str().unwrap();
        assert!(
            !message.contains("AccountPatch") && !message.contains("Text"),
            "{message}"
        );
    }
    let me: Value = device.me().await.json().await.unwrap();
    assert_eq!(me["first_name"], "Zebediah", "nothing stored");
    let r = device
        .client
        .post(device.url("/api/v1/accounts"))
        .json(&json!({ "vsee_id": 12345, "email": "a@b.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".to_owned())
    );
}

async fn wrong_methods_and_media_types_get_their_status(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    let r = device
        .client
        .delete(device.url("/api/v1/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(error_code(r).await.1, "method_not_allowed");
    let r = device.client.put(device.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, PATCH");
    let r = device
        .client
        .post(device.url("/api/v1/deletions/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET");

    let r = device
        .client
        .post(device.url("/api/v1/accounts"))
        .header("content-type", "text/plain")
        .body("vsee_id=mark08")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".to_owned()
        )
    );
    let spec = device.get_json("/api/openapi.json").await;
    let responses = &spec["paths"]["/v1/accounts"]["post"]["responses"];
    for status in ["413", "415", "422", "429"] {
        assert!(responses.get(status).is_some(), "{status} is documented");
    }
    assert_eq!(
        spec["components"]["schemas"]["OfflineNotification"]["properties"]["email"]["nullable"],
        true
    );
    assert_eq!(
        spec["components"]["schemas"]["SignUp"]["properties"]["vsee_id"]["maxLength"],
        32
    );
    assert_eq!(
        spec["paths"]["/v1/me"]["get"]["security"],
        json!([{ "SessionCookie": [] }])
    );
    assert!(spec["paths"]["/v1/accounts"]["post"].get("security").is_none());
}

async fn private_responses_are_not_cached_or_sniffed(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    for path in [
        "/api/v1/me",
        "/api/openapi.json",
        "/api/docs",
        "/api/v1/nothing",
        "/readyz",
        "/login",
    ] {
        let r = device.client.get(device.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        assert!(
            r.headers().get("strict-transport-security").is_none(),
            "plain http: {path}"
        );
    }
}

/// Trailing and repeated slashes reach the route they would without them (that the query is
/// kept is a unit test of `http::slashes`); a 405 still names the route's methods.
#[tokio::test]
async fn paths_with_extra_slashes_reach_their_route() {
    let app = spawn_app().await;
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    for path in ["/api/v1/me/", "/api//v1///me", "//api/v1/me//"] {
        let me = device.client.get(device.url(path)).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK, "{path}");
        assert_eq!(me.json::<Value>().await.unwrap()["vsee_id"], "mark08", "{path}");
    }
    let r = device.client.put(device.url("/api/v1/me/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, PATCH");
    let visitor = app.device();
    let page = visitor.client.get(visitor.url("/login//")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<form"));
}

#[tokio::test]
async fn https_deployments_send_hsts() {
    let app = spawn_app_with(
        erasure::startup::Roles::ALL,
        &[("ERASURE_SERVER__PUBLIC_URL", "https://messenger.example.com")],
    )
    .await;
    let r = app
        .device()
        .client
        .get(app.device().url("/login"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

async fn a_form_posted_from_another_site_is_refused(stack: Stack) {
    let app = spawn_app_on(stack).await;
    app.device().sign_up("mark08", "mark@vsee.com").await;
    let browser = app.device();
    let (_, html) = browser.get_page("/login").await;
    let token = csrf_token(&html);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = browser
            .client
            .post(browser.url("/login"))
            .header(header, value)
            .form(&[
                ("csrf_token", token.as_str()),
                ("vsee_id", "mark08"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(
            r.headers()
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().contains("erasure_session"))
        );
    }
    assert_eq!(
        browser.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "no session was opened"
    );
    // The same form from our own origin works.
    let r = browser
        .client
        .post(browser.url("/login"))
        .header("origin", browser.url(""))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("csrf_token", token.as_str()),
            ("vsee_id", "mark08"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

crate::on_both_stacks!(
    strings_refuse_other_json_types_and_errors_name_no_internal_type,
    wrong_methods_and_media_types_get_their_status,
    private_responses_are_not_cached_or_sniffed,
    a_form_posted_from_another_site_is_refused,
);
