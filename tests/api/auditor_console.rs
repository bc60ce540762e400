//! The auditor's console: the ledger, an entry's timeline, the lookup and the reports, clicked
//! through in a real headless Chromium (screenshots in target/console-screenshots), and the
//! pages' doors over plain HTTP on both stacks.

use reqwest::StatusCode;

use crate::{
    helpers::*,
    staff::{STAFF_PASSWORD, create_staff, staff_device},
};

async fn delete_account(app: &TestApp, vsee_id: &str, email: &str) {
    let device = app.signed_up_and_logged_in(vsee_id, email).await;
    let receipt = device.request_deletion(email).await;
    app.wait_for_status(&receipt, "completed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_browser),
    ignore = "browser: set ERASURE_TEST_CHROMEDRIVER to chromedriver (.ci/setup installs chromium-driver)"
)]
async fn an_auditor_reviews_the_ledger_in_the_console() {
    let app = spawn_app().await;
    delete_account(&app, "mark08", "mark+08@vsee.com").await;
    delete_account(&app, "ada", "ada@example.org").await;
    let out = create_staff(&app, "auditor@staff.example", "auditor", STAFF_PASSWORD);
    assert!(out.status.success());
    let browser = Browser::start("an_auditor_reviews_the_ledger_in_the_console").await;

    browser.go(&format!("{}/staff/login", app.address)).await;
    browser.type_into("#email", "auditor@staff.example").await;
    browser.type_into("#password", STAFF_PASSWORD).await;
    browser.click("form button[type=submit]").await;
    // An auditor starts at the ledger, and is offered no tickets.
    let page = browser.wait_for_text("Deletion ledger").await;
    assert!(!page.contains("href=\"/staff/tickets\""));
    browser.screenshot("auditor-1-ledger").await;

    browser.click("#event option[value='account_deleted']").await;
    browser.click("form.filters button[type=submit]").await;
    // htmx swaps the table and pushes the filter's URL; under load that can take a while.
    let mut page = String::new();
    for _ in 0..300 {
        page = browser.source().await;
        if browser.url().await.contains("event=account_deleted")
            && page.contains("account_deleted</td>")
            && !page.contains("ledger_searched</td>")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains("account_deleted</td>"), "{page}");
    assert!(!page.contains("ledger_searched</td>"), "filtered to deletions");
    assert!(
        browser.url().await.contains("event=account_deleted"),
        "htmx pushed the filter's URL"
    );
    browser.screenshot("auditor-2-filtered").await;

    browser.click("#entries a[href='/staff/ledger/1']").await;
    let page = browser.wait_for_text("Timeline").await;
    assert!(page.contains("purge finished: accounts 1"), "{page}");
    assert!(page.contains("completed: ledger entry written"));
    assert!(page.contains("Merkle leaf hash"));
    browser.screenshot("auditor-3-entry").await;

    browser.click("nav a[href='/staff/lookup']").await;
    browser.wait_for_text("Was this person deleted?").await;
    browser.type_into("#identifier", "mark+08@vsee.com").await;
    browser.click("form[action='/staff/lookup'] button").await;
    let page = browser.wait_for_text("The ledger records the deletion").await;
    assert!(!page.contains("mark+08"), "the identifier is not shown back");
    browser.screenshot("auditor-4-lookup").await;
    browser.type_into("#identifier", "nobody@example.org").await;
    browser.click("form[action='/staff/lookup'] button").await;
    browser.wait_for_text("No deletion is recorded").await;

    browser.click("nav a[href='/staff/reports']").await;
    let page = browser.wait_for_text("Deletions completed per day").await;
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    browser.screenshot("auditor-5-reports").await;

    // The auditor's own reads are in the ledger.
    browser
        .go(&format!("{}/staff/ledger?actor_kind=staff", app.address))
        .await;
    let page = browser.wait_for_text("ledger_looked_up").await;
    assert!(page.contains("ledger_entry_viewed"));
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "the console logged errors (CSP?): {errors:?}");
}

async fn the_auditor_pages_let_in_auditors_and_admins_only(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "doors1", "doors1@example.org").await;
    let pages = [
        "/staff/ledger",
        "/staff/ledger/1",
        "/staff/lookup",
        "/staff/reports",
    ];
    let anonymous = app.device();
    for page in pages {
        let r = anonymous.client.get(anonymous.url(page)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(r.headers()["location"], "/staff/login");
    }
    let agent = staff_device(&app, "agent").await;
    for page in pages {
        assert_eq!(agent.get_page(page).await.0, StatusCode::FORBIDDEN, "{page}");
    }
    let auditor = staff_device(&app, "auditor").await;
    let admin = staff_device(&app, "admin").await;
    for who in [&auditor, &admin] {
        for page in pages {
            let (status, html) = who.get_page(page).await;
            assert_eq!(status, StatusCode::OK, "{page}: {html}");
        }
    }
    let (status, html) = auditor.get_page("/staff/ledger?event=nope").await;
    assert_eq!(status.as_u16(), 422);
    assert!(html.contains("event must be one of"), "{html}");
    assert_eq!(
        auditor.get_page("/staff/ledger?from=yesterday").await.0.as_u16(),
        422
    );
    assert_eq!(
        auditor.get_page("/staff/ledger/999").await.0,
        StatusCode::NOT_FOUND
    );

    // A lookup without the page's CSRF token is refused and recorded nowhere.
    let before = app.count("SELECT COUNT(*) FROM ledger_entries").await;
    let r = auditor
        .client
        .post(auditor.url("/staff/lookup"))
        .form(&[("identifier", "doors1@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_entries").await, before);
    let r = auditor
        .submit_form(
            "/staff/lookup",
            "/staff/lookup",
            &[("identifier", "doors1@example.org")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The ledger records the deletion")
    );
    let r = auditor
        .submit_form("/staff/lookup", "/staff/lookup", &[("identifier", "not an id!!")])
        .await;
    assert_eq!(r.status().as_u16(), 422);

    // The reports count what happened.
    let (_, html) = auditor.get_page("/staff/reports").await;
    assert!(html.contains("Deletions completed per day, by channel"));
    assert_eq!(html.matches("<svg").count(), 4);
}

crate::on_both_stacks!(the_auditor_pages_let_in_auditors_and_admins_only);
