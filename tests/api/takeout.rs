//! Takeout (GDPR Art. 20): the holder asks for an archive, a job builds it, the holder is
//! mailed, downloads it logged in (nobody else can), it holds the right data, it expires, and
//! a deletion removes it with the account.

use std::{io::Read, time::Duration};

use erasure::startup::Roles;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    helpers::*,
    staff::{STAFF_PASSWORD, create_staff},
};

/// The archive's entries, by name, read back with the zip crate.
fn entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut found = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        found.insert(file.name().to_owned(), content);
    }
    found
}

async fn ask(device: &Device) -> reqwest::Response {
    device
        .client
        .post(device.url("/api/v1/me/export"))
        .send()
        .await
        .unwrap()
}

async fn ready(app: &TestApp, device: &Device) -> Value {
    app.wait_for_count(
        "SELECT COUNT(*) FROM data_exports WHERE status = 'ready'",
        1,
        Duration::from_secs(30),
    )
    .await;
    device.get_json("/api/v1/me/export").await
}

async fn a_holder_downloads_their_data_and_the_archive_goes_with_the_account(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[("ERASURE_EXPORT__TTL_HOURS", "24")]).await;
    let seeded = app.seed("takeout01", "takeout1@vsee.com", "free", 2345).await;
    let device = app.device();
    assert_eq!(
        device.log_in("takeout01", PASSWORD).await.status(),
        StatusCode::OK
    );

    // Nothing asked yet; asking twice builds once.
    let (status, code) = error_code(
        device
            .client
            .get(device.url("/api/v1/me/export"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let r = ask(&device).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let again = ask(&device).await.status();
    assert!(
        again == StatusCode::OK || again == StatusCode::ACCEPTED,
        "{again}"
    );

    let export = ready(&app, &device).await;
    assert_eq!(export["status"], "ready");
    // 2,345 messages, 7 contacts, 5 calls, 3 devices.
    assert_eq!(export["items_total"], 2345 + 7 + 5 + 3);
    assert_eq!(export["items_done"], export["items_total"]);
    let link = export["download_url"].as_str().unwrap().to_owned();

    // The holder is mailed a link to the page, which needs the log-in.
    let eml = app
        .wait_for_mail(|eml| eml.contains("Subject: Your data is ready to download"))
        .await;
    assert!(
        eml.contains("To: takeout1@vsee.com") && eml.contains("/account/export"),
        "{eml}"
    );
    let stranger = app.device();
    let r = stranger.client.get(stranger.url(&link)).send().await.unwrap();
    assert_ne!(r.status(), StatusCode::OK, "no log-in, no archive");
    let other = app.signed_up_and_logged_in("someone", "someone@vsee.com").await;
    let r = other.client.get(other.url(&link)).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another account's archive is not found"
    );

    let r = device.client.get(device.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let downloaded = r.bytes().await.unwrap();
    let files = entries(&downloaded);
    for name in erasure::services::takeout::ENTRIES {
        assert!(files.contains_key(name), "{name} in {:?}", files.keys());
    }
    assert!(files.contains_key("avatar.png"), "{:?}", files.keys());
    let profile: Value = serde_json::from_slice(&files["profile.json"]).unwrap();
    assert_eq!(profile["vsee_id"], "takeout01");
    assert_eq!(profile["email"], "takeout1@vsee.com");
    let messages: Vec<Value> = serde_json::from_slice(&files["messages.json"]).unwrap();
    assert_eq!(messages.len(), 2345);
    // The database holds them sealed under the account's key.
    let key = app
        .state
        .vault
        .key(
            &app.state.db.conn,
            &erasure::vault::KeyOwner::Account(seeded.account_id),
        )
        .await
        .unwrap()
        .unwrap();
    let bodies: Vec<String> = app
        .strings(&format!(
            "SELECT body FROM messages WHERE sender_id = {} ORDER BY id",
            seeded.account_id
        ))
        .await
        .iter()
        .map(|sealed| {
            assert!(erasure::vault::is_sealed(sealed), "{sealed}");
            key.open(erasure::vault::columns::MESSAGE_BODY, sealed).unwrap()
        })
        .collect();
    assert_eq!(
        messages
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        bodies
    );
    let contacts: Vec<Value> = serde_json::from_slice(&files["contacts.json"]).unwrap();
    assert_eq!(contacts.len(), 7);
    assert!(contacts.iter().all(|c| c["vsee_id"].is_string()), "{contacts:?}");
    let calls: Vec<Value> = serde_json::from_slice(&files["calls.json"]).unwrap();
    assert_eq!(calls.len(), 5);
    let devices: Vec<Value> = serde_json::from_slice(&files["devices.json"]).unwrap();
    assert_eq!(devices.len(), 3);
    assert!(
        !String::from_utf8_lossy(&files["devices.json"]).contains("push"),
        "push tokens are credentials, not exported"
    );

    // The page shows it; the data map covers it; the deletion removes file and row.
    let (code, page) = device.get_page("/account/export").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("DOWNLOAD MY DATA"), "{page}");
    let exports_dir = app.data_dir().join("exports");
    let on_disk: Vec<_> = std::fs::read_dir(&exports_dir).unwrap().collect();
    assert_eq!(on_disk.len(), 1);
    // On disk it is sealed in chunks under the account's key: no ZIP structure, no names.
    let stored = std::fs::read(on_disk[0].as_ref().unwrap().path()).unwrap();
    assert!(stored.starts_with(erasure::vault::sealed_file::MAGIC));
    assert!(
        !stored.windows(12).any(|w| w == b"profile.json") && !stored.windows(4).any(|w| w == b"PK\x03\x04"),
        "an archive in clear on disk"
    );
    // The size the holder is shown is what they download.
    assert_eq!(export["bytes"].as_i64(), Some(downloaded.len() as i64));
    let receipt = device.request_deletion("takeout1@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;
    assert_eq!(
        std::fs::read_dir(&exports_dir).unwrap().count(),
        0,
        "the archive is purged"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM data_exports").await, 0);
    let counts = app.request().await.store_counts.unwrap();
    assert!(
        counts.contains("\"data_exports\":1") && counts.contains("\"exports\":1"),
        "{counts}"
    );
}

async fn an_archive_expires_and_is_removed(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[("ERASURE_EXPORT__TTL_HOURS", "24")]).await;
    let device = app.signed_up_and_logged_in("expiring", "expiring@vsee.com").await;
    let r = ask(&device).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let export = ready(&app, &device).await;
    let link = export["download_url"].as_str().unwrap().to_owned();

    app.clock.advance(chrono::Duration::hours(25));
    let r = device.client.get(device.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "expired");
    let (_, page) = device.get_page("/account/export").await;
    assert!(page.contains("has expired"), "{page}");
    erasure::workers::relay::vacuum_once(&app.state).await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM data_exports").await, 0);
    assert_eq!(
        std::fs::read_dir(app.data_dir().join("exports")).unwrap().count(),
        0
    );
}

async fn a_dead_takeout_shows_failed_and_builds_when_retried(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[("ERASURE_QUEUE__MAX_ATTEMPTS", "1")]).await;
    let device = app.signed_up_and_logged_in("retried", "retried@vsee.com").await;
    // The archives' folder cannot be made: a file stands in its way.
    let exports = app.data_dir().join("exports");
    std::fs::write(&exports, b"in the way").unwrap();
    assert_eq!(ask(&device).await.status(), StatusCode::ACCEPTED);
    app.wait_for_count(
        "SELECT COUNT(*) FROM data_exports WHERE status = 'failed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let (_, page) = device.get_page("/account/export").await;
    assert!(page.contains("could not be made"), "{page}");

    // Fixed, retried by hand: built.
    std::fs::remove_file(&exports).unwrap();
    let out = app.cli(&["jobs", "dead"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields: Vec<&str> = listing.lines().next().unwrap().split('\t').collect();
    assert_eq!(fields[1], "export", "{listing}");
    let out = app.cli(&["jobs", "retry", fields[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let export = ready(&app, &device).await;
    assert_eq!(export["status"], "ready");
}

crate::on_both_stacks!(
    a_holder_downloads_their_data_and_the_archive_goes_with_the_account,
    an_archive_expires_and_is_removed,
    a_dead_takeout_shows_failed_and_builds_when_retried,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_browser),
    ignore = "browser: set ERASURE_TEST_CHROMEDRIVER to chromedriver (.ci/setup installs chromium-driver)"
)]
async fn takeout_and_the_admins_accounts_page_work_in_a_browser() {
    let app = spawn_app().await;
    app.seed("browse02", "browse2@vsee.com", "free", 40).await;
    let browser = Browser::start("takeout_and_the_admins_accounts_page_work_in_a_browser").await;

    // From the warning page: "Download my data first", progress, then the download.
    browser.go(&format!("{}/login", app.address)).await;
    browser.type_into("#vsee_id", "browse02").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("DELETE MY ACCOUNT").await;
    browser.go(&format!("{}/account/delete", app.address)).await;
    browser.click("form.takeout button").await;
    // The page refreshes itself while the archive is built.
    let page = browser.wait_for_text("DOWNLOAD MY DATA").await;
    assert!(
        page.contains("/account/export/") && page.contains("/download"),
        "{page}"
    );
    browser.screenshot("takeout-1-ready").await;

    // An admin's accounts page: a preview, then a confirmation that types the count.
    {
        use erasure::models::account;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let created = chrono::Utc::now() - chrono::Duration::days(800);
        let peers: Vec<i64> = app.accounts_named("peer-").await.iter().map(|a| a.id).collect();
        account::Entity::update_many()
            .col_expr(account::Column::CreatedAt, Expr::value(created))
            .col_expr(
                account::Column::LastLoginAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(account::Column::Id.is_in(peers))
            .exec(&app.state.db.conn)
            .await
            .unwrap();
    }
    let dormant = app.accounts_named("peer-").await.len() as i64;
    assert!(dormant > 0, "the seeded contacts are the dormant accounts here");
    assert!(
        create_staff(&app, "admin@staff.example", "admin", STAFF_PASSWORD)
            .status
            .success()
    );
    browser.go(&format!("{}/staff/login", app.address)).await;
    browser.type_into("#email", "admin@staff.example").await;
    browser.type_into("#password", STAFF_PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Log out").await;
    browser.click("nav a[href='/staff/accounts']").await;
    browser.wait_for_text("Delete dormant accounts").await;
    // What the date field's GET form submits (typing into a date field depends on the locale).
    let since = (chrono::Utc::now() - chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    browser
        .go(&format!("{}/staff/accounts?inactive_since={since}", app.address))
        .await;
    let page = browser
        .wait_for_text("Nothing is deleted until you confirm")
        .await;
    assert!(page.contains(&format!("<strong>{dormant}</strong>")), "{page}");
    browser.screenshot("accounts-1-preview").await;
    browser.type_into("#confirm-count", &dormant.to_string()).await;
    browser
        .click("form[aria-label='Confirm the bulk deletion'] button")
        .await;
    browser.wait_for_text("Started:").await;
    browser.screenshot("accounts-2-started").await;
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE channel = 'bulk' AND status = 'completed'",
        dormant,
        Duration::from_secs(60),
    )
    .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "the pages logged errors (CSP?): {errors:?}");
}
