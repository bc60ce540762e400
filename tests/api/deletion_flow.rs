use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn a_free_user_deletes_their_account_through_the_api(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("mark08", "Mark+08@vsee.com").await;

    let r = device.confirm_deletion("  MARK+08@VSee.com ").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    let receipt = body["receipt_id"].as_str().unwrap().to_owned();

    let done = app.wait_for_status(&receipt, "completed").await;
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["done", "done", "done"]);
    assert!(
        !done.to_string().contains("mark"),
        "the status holds no personal data: {done}"
    );

    // Logged out and unable to log back in; the account row is gone.
    assert_eq!(device.me().await.status(), StatusCode::UNAUTHORIZED);
    let (status, code) = error_code(app.device().log_in("mark08", PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 0);

    // One confirmation email, carrying the receipt, to the account's address.
    let mails = app.outbox_files();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (_, eml) = &mails[0];
    assert!(eml.contains("To: mark+08@vsee.com"), "{eml}");
    assert!(eml.contains(&receipt));
    assert!(eml.contains("Subject: Your account has been deleted"));

    // One ledger entry, and the address was forgotten once the email went out.
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM deletion_requests WHERE notify_email IS NOT NULL")
            .await,
        0
    );
}

async fn a_free_user_deletes_their_account_through_the_seed_screens(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let browser = app.device();

    let r = browser
        .client
        .get(browser.url("/account/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-frame-options"],
        "DENY",
        "the delete page cannot be framed"
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");

    let (status, html) = browser.get_page("/login").await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "VSee Messenger Login",
        "VSee ID",
        "Password",
        "LOGIN",
        "Sign Up",
        "Forgot Password",
    ] {
        assert!(html.contains(text), "login page lacks {text:?}");
    }

    let r = browser
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("vsee_id", "mark08"),
                ("email", "mark+08@vsee.com"),
                ("password", PASSWORD),
                ("first_name", "Mark"),
                ("last_name", "Twain"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    browser
        .client
        .post(browser.url("/logout"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    let (_, html) = browser.get_page("/account/profile").await;
    assert!(html.contains("Account Profile"), "a forged logout does nothing");

    // Log out properly, then in through the login page.
    let r = browser.submit_form("/account/profile", "/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser
        .submit_form(
            "/login",
            "/login",
            &[("vsee_id", "mark08"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account/profile");

    let (_, html) = browser.get_page("/account/profile").await;
    for text in [
        "Account Profile",
        "VSEE ID",
        "FIRST NAME",
        "LAST NAME",
        "PASSWORD",
        "OFFLINE NOTIFICATION (EMAIL)",
        "Manage",
        "DELETE MY ACCOUNT",
    ] {
        assert!(html.contains(text), "profile page lacks {text:?}");
    }

    let (_, html) = browser.get_page("/account/delete").await;
    assert!(html.contains(
        "Deleting your account cannot be undone. All data associated will be permanently deleted. To confirm deletion, please type your email."
    ));

    // Without the form's CSRF token nothing happens.
    let r = browser
        .client
        .post(browser.url("/account/delete"))
        .form(&[("email", "mark+08@vsee.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);

    let r = browser
        .submit_form(
            "/account/delete",
            "/account/delete",
            &[("email", "Mark+08@vsee.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Your account has been deleted. Thank you for using our service!"));
    assert!(html.contains("You are not logged in"));
    assert!(html.contains("href=\"/login\""));

    let (status, _) = browser.get_page("/account/profile").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logged out");

    let receipt = html
        .split("/deletions/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    app.wait_for_status(&receipt, "completed").await;
    let r = browser
        .client
        .get(browser.url(&format!("/deletions/{receipt}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A public page with no form: the pages' headers, and no cookie at all.
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("set-cookie").is_none(), "{:?}", r.headers());
    assert!(r.text().await.unwrap().contains("completed"));
    let r = browser
        .client
        .post(browser.url(&format!("/deletions/{receipt}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let web_channel = app
        .count("SELECT COUNT(*) FROM deletion_requests WHERE channel = 'web'")
        .await;
    assert_eq!(web_channel, 1);
}

async fn every_session_of_the_account_ends_on_every_device(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let laptop = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;
    let phone = app.device();
    assert_eq!(phone.log_in("mark08", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(phone.me().await.status(), StatusCode::OK);

    assert_eq!(
        laptop.confirm_deletion("mark+08@vsee.com").await.status(),
        StatusCode::ACCEPTED
    );

    let (status, code) = error_code(phone.me().await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn an_unknown_receipt_is_not_found(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let (status, code) = error_code(
        app.device()
            .deletion_status("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, code) = error_code(app.device().deletion_status("short").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

crate::on_both_stacks!(
    a_free_user_deletes_their_account_through_the_api,
    a_free_user_deletes_their_account_through_the_seed_screens,
    every_session_of_the_account_ends_on_every_device,
    an_unknown_receipt_is_not_found,
);
