//! The re-registration cool-off (`accounts.reuse_cooloff_days`): a deleted account's email and
//! VSee ID cannot sign up again for a while, the refusal names neither, the block is held only
//! as pseudonyms, ends by itself, and an admin can lift one with a reason the ledger records.

use reqwest::StatusCode;
use serde_json::json;

use crate::{helpers::*, staff::staff_device};

const COOLOFF: (&str, &str) = ("ERASURE_ACCOUNTS__REUSE_COOLOFF_DAYS", "30");

async fn refused(app: &TestApp, vsee_id: &str, email: &str) {
    let (status, code) = error_code(app.device().sign_up(vsee_id, email).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "identifier_cooling_off"),
        "{vsee_id} {email}"
    );
}

async fn a_deleted_accounts_identifiers_cool_off_then_are_free_again(stack: Stack) {
    let app = spawn_on(stack, erasure::startup::Roles::ALL, &[COOLOFF]).await;
    let device = app.signed_up_and_logged_in("leaver01", "leaver1@vsee.com").await;
    let receipt = device.request_deletion("leaver1@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;

    // Neither the email nor the VSee ID signs up again; the answer is the same for both.
    refused(&app, "newcomer01", "Leaver1@VSee.com").await;
    refused(&app, "leaver01", "newcomer1@vsee.com").await;
    let r = app.device().sign_up("leaver01", "newcomer1@vsee.com").await;
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("VSee ID cannot") && !body.contains("leaver"),
        "{body}"
    );
    // Nor does another account take the email.
    let other = app.signed_up_and_logged_in("other01", "other1@vsee.com").await;
    let (status, code) = error_code(other.patch_me(json!({ "email": "leaver1@vsee.com" })).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "identifier_cooling_off")
    );
    // Nothing was created by the refusals.
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 1);

    // Only pseudonyms are held: the blocks name neither identifier.
    let held = app
        .strings("SELECT pseudonym FROM reuse_blocks ORDER BY pseudonym")
        .await;
    assert_eq!(held.len(), 2);
    assert!(
        held.iter().all(|p| p.len() == 64 && !p.contains("leaver")),
        "{held:?}"
    );

    // An admin lifts the email's block, with a reason the ledger signs; the VSee ID stays held.
    let admin = staff_device(&app, "admin").await;
    let lift = "/api/v1/admin/reuse-blocks/lift";
    let (status, code) = error_code(
        admin
            .post_json(lift, json!({ "identifier": "leaver1@vsee.com", "reason": " " }))
            .await,
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    let agent = staff_device(&app, "agent").await;
    let r = agent
        .post_json(
            lift,
            json!({ "identifier": "leaver1@vsee.com", "reason": "asked by legal" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = admin
        .post_json(
            lift,
            json!({ "identifier": "LEAVER1@vsee.com", "reason": "the holder came back, ticket T-1" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, code) = error_code(
        admin
            .post_json(
                lift,
                json!({ "identifier": "leaver1@vsee.com", "reason": "again" }),
            )
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(
        app.strings("SELECT event || '|' || actor_kind FROM ledger_entries ORDER BY seq")
            .await,
        ["account_deleted|account_holder", "reuse_block_lifted|staff"]
    );
    assert_eq!(app.verify_ledger().await.unwrap(), 2);
    assert_eq!(
        app.device()
            .sign_up("newcomer01", "leaver1@vsee.com")
            .await
            .status(),
        StatusCode::CREATED
    );
    refused(&app, "leaver01", "newcomer2@vsee.com").await;

    // The VSee ID's block ends by itself.
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(
        app.device()
            .sign_up("leaver01", "newcomer2@vsee.com")
            .await
            .status(),
        StatusCode::CREATED
    );
    erasure::workers::relay::vacuum_once(&app.state).await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM reuse_blocks").await, 0);
}

async fn without_a_cooloff_identifiers_are_free_at_once(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let device = app.signed_up_and_logged_in("leaver02", "leaver2@vsee.com").await;
    let receipt = device.request_deletion("leaver2@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM reuse_blocks").await, 0);
    assert_eq!(
        app.device()
            .sign_up("leaver02", "leaver2@vsee.com")
            .await
            .status(),
        StatusCode::CREATED
    );
}

crate::on_both_stacks!(
    a_deleted_accounts_identifiers_cool_off_then_are_free_again,
    without_a_cooloff_identifiers_are_free_at_once,
);
