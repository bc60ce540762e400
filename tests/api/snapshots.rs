//! Snapshots of what other people depend on: the API contract and the email users receive.
//! A change to either shows up in review as a snapshot diff (`cargo insta review`).

use crate::helpers::*;

#[tokio::test]
async fn the_openapi_document() {
    let app = spawn_app().await;
    let device = app.device();
    let spec = device.get_json("/api/openapi.json").await;
    insta::assert_json_snapshot!("openapi", spec);
}

#[tokio::test]
async fn the_confirmation_email() {
    let app = spawn_app().await;
    let device = app.signed_up_and_logged_in("mark08", "mark+08@vsee.com").await;
    let receipt = device.request_deletion("mark+08@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;
    let request_id = app.only_request_id().await.to_string();

    let (name, eml) = app.outbox_files().remove(0);
    assert_eq!(name, format!("deletion-{request_id}.eml"));
    let redacted: String = eml
        .replace(&receipt, "[receipt]")
        .replace(&request_id, "[request-id]")
        .lines()
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: [date]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("confirmation_email", redacted);
}
