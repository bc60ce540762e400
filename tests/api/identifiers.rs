//! Identifiers that look the same are the same, and every address we accept is one the mailer
//! can send to.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn sign_up_status(
    device: &Device,
    vsee_id: &str,
    email: &str,
    first_name: &str,
) -> (StatusCode, String) {
    let r = device
        .client
        .post(device.url("/api/v1/accounts"))
        .json(&json!({ "vsee_id": vsee_id, "email": email, "password": PASSWORD,
                       "first_name": first_name, "last_name": "Quillfeather" }))
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::CREATED {
        return (r.status(), String::new());
    }
    error_code(r).await
}

async fn addresses_the_mailer_refuses_are_refused_at_entry(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    let long_label = format!("a@{}.com", "b".repeat(180));
    for email in [
        "a14(comment)@example.com",
        "=?utf-8?q?a12=0D=0ABcc:_x?=@example.com",
        long_label.as_str(),
    ] {
        let (status, code) = sign_up_status(&device, "mark08", email, "Zebediah").await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{email}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 0);

    // Profile edits take the same grammar: nothing changes.
    let device = app.signed_up_and_logged_in("mark08", "mark@vsee.com").await;
    for body in [
        json!({ "email": "a14(comment)@example.com", "current_password": PASSWORD }),
        json!({ "offline_notification_email": "=?utf-8?q?x?=@example.com" }),
    ] {
        let (status, code) = error_code(device.patch_me(body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{body}"
        );
    }
    let me: serde_json::Value = device.me().await.json().await.unwrap();
    assert_eq!(me["email"], "mark@vsee.com");
    assert_eq!(me["offline_notification"]["email"], serde_json::Value::Null);
}

async fn look_alike_identifiers_are_one_identifier(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    assert_eq!(
        sign_up_status(&device, "alice", "alice@example.com", "Alice")
            .await
            .0,
        StatusCode::CREATED
    );

    // Fullwidth letters are the same letters: the same ID, the same address.
    let (status, code) = sign_up_status(&device, "ａｌｉｃｅ", "other@example.com", "Alice").await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (status, code) = sign_up_status(&device, "alice2", "ａｌｉｃｅ@example.com", "Alice").await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));

    // A Cyrillic 'с' or an invisible character is not accepted as a different identifier.
    for (id, email) in [
        ("ali\u{0441}e", "x1@example.com"),
        ("alice3", "ali\u{0441}e@example.com"),
        ("alice4", "ali\u{200B}ce@example.com"),
        ("ali\u{200B}ce", "x2@example.com"),
        ("alice5", "alice@ex\u{0430}mple.com"),
    ] {
        let (status, code) = sign_up_status(&device, id, email, "Alice").await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{id:?} {email:?}"
        );
    }
    // Names may be in any script, but not carry direction overrides or hidden characters.
    assert_eq!(
        sign_up_status(&device, "zoe01", "zoe@example.com", "Zoë Αλίκη")
            .await
            .0,
        StatusCode::CREATED
    );
    for name in ["Ma\u{202E}rk", "Mark\u{200B}", "Ma\u{2066}rk"] {
        let (status, code) = sign_up_status(&device, "mark99", "mark99@example.com", name).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{name:?}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 2);

    // Logging in with the fullwidth form reaches the same account.
    assert_eq!(
        app.device().log_in("ＡＬＩＣＥ", PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn a_common_password_is_refused(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.device();
    for password in ["12345678", "Password1", "iloveyou"] {
        let r = device
            .client
            .post(device.url("/api/v1/accounts"))
            .json(&json!({ "vsee_id": "mark08", "email": "mark@vsee.com", "password": password }))
            .send()
            .await
            .unwrap();
        let (status, code) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{password}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 0);
}

async fn an_international_address_is_sent_to_in_its_ascii_form(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("anna01", "Anna@BÜCHER.de").await;
    let me: serde_json::Value = device.me().await.json().await.unwrap();
    assert_eq!(me["email"], "anna@bücher.de", "stored normalised, shown as typed");
    let receipt = device.request_deletion("anna@xn--bcher-kva.de").await;
    app.wait_for_status(&receipt, "completed").await;
    let eml = app
        .wait_for_mail(|eml| eml.contains("Your account has been deleted"))
        .await;
    assert!(eml.contains("To: anna@xn--bcher-kva.de"), "{eml}");
}

crate::on_both_stacks!(
    addresses_the_mailer_refuses_are_refused_at_entry,
    look_alike_identifiers_are_one_identifier,
    a_common_password_is_refused,
    an_international_address_is_sent_to_in_its_ascii_form,
);
