//! The staff console: an agent logs in, finds a ticket in the queue, reads it, records a
//! verification and approves it, in a real headless Chromium (screenshots in
//! target/console-screenshots); and the pages' doors, over plain HTTP on both stacks.

use reqwest::StatusCode;

use crate::{
    helpers::*,
    intake::ingest,
    staff::{STAFF_PASSWORD, create_staff, staff_device},
};

fn open_ticket(app: &TestApp, from: &str, id: &str, body: &str) -> String {
    let raw = format!(
        "From: {from}\r\nTo: help@vsee.com\r\nSubject: Cancel my subscription\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n"
    );
    let out = ingest(&app.vars, raw.as_bytes());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(erasure_browser),
    ignore = "browser: set ERASURE_TEST_CHROMEDRIVER to chromedriver (.ci/setup installs chromium-driver)"
)]
async fn an_agent_works_a_ticket_in_the_console() {
    let app = spawn_app().await;
    let account = app.seed("paid20", "paid20@vsee.com", "paid", 4).await;
    let reference = open_ticket(
        &app,
        "paid20@vsee.com",
        "console@mail.example",
        "Close it. <script>alert(1)</script>",
    );
    let duplicate = open_ticket(
        &app,
        "paid20@vsee.com",
        "console-again@mail.example",
        "Did you get my first message?",
    );
    let out = create_staff(&app, "agent@staff.example", "agent", STAFF_PASSWORD);
    assert!(out.status.success());
    let browser = Browser::start("an_agent_works_a_ticket_in_the_console").await;

    // The account holder's own pages take a real browser's form posts too (Chromium sends
    // `Origin: null` under `Referrer-Policy: no-referrer`).
    browser.go(&format!("{}/login", app.address)).await;
    browser.type_into("#vsee_id", "paid20").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Account Profile").await;
    browser.go(&format!("{}/account/delete", app.address)).await;
    // The newest request made by mail shows there, and no other one is offered.
    let page = browser.wait_for_text("Your termination request").await;
    assert!(
        page.contains(&duplicate) && !page.contains("REQUEST TERMINATION"),
        "{page}"
    );
    browser.screenshot("0-paid-account").await;

    // Not logged in: the console sends the browser to its log-in page.
    browser.go(&format!("{}/staff/tickets", app.address)).await;
    assert!(
        browser.url().await.ends_with("/staff/login"),
        "{}",
        browser.url().await
    );
    browser.type_into("#email", "agent@staff.example").await;
    browser.type_into("#password", STAFF_PASSWORD).await;
    browser.screenshot("1-login").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text(&reference).await;
    assert!(browser.url().await.ends_with("/staff/tickets"));
    browser.screenshot("2-queue").await;

    // The search swaps the list in place (htmx) and the address follows it.
    browser.type_into("#q", "nothing-matches-this").await;
    browser.click(".filters button[type=submit]").await;
    browser.wait_for_text("No tickets match.").await;
    assert!(
        browser.url().await.contains("q=nothing-matches-this"),
        "{}",
        browser.url().await
    );

    browser
        .go(&format!("{}/staff/tickets?q={reference}", app.address))
        .await;
    browser.click("table.queue a").await;
    let page = browser.wait_for_text("What approval removes").await;
    // The message is text: the markup in it is shown, never run.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    assert!(page.contains("not verified"));
    assert!(
        page.contains("messages.sender_id"),
        "the data map's stores are listed: {page}"
    );
    assert!(
        page.contains("Sender checks") && page.contains("Subscription"),
        "{page}"
    );
    browser.screenshot("3-ticket").await;
    let ticket_url = browser.url().await;

    // The second message is a duplicate: merged into the first, its text joins it.
    browser
        .go(&format!("{}/staff/tickets?q={duplicate}", app.address))
        .await;
    browser.click("table.queue a").await;
    browser.wait_for_text("merge into ticket").await;
    browser.type_into("#merge-into", &reference).await;
    browser
        .type_into("#merge-reason", "the same person wrote twice")
        .await;
    browser.click("form[action$='/merge'] button").await;
    browser.wait_for_text(&format!("Merged into {reference}")).await;
    browser.screenshot("3b-merged").await;
    browser.go(&ticket_url).await;
    let page = browser.wait_for_text("Did you get my first message?").await;
    assert!(page.contains(&format!("[{duplicate}]")), "{page}");

    browser
        .type_into("#verify-reason", "called back on the number on file")
        .await;
    browser.click("form[action$='/verification'] button").await;
    browser.wait_for_text("Verification recorded.").await;
    browser.screenshot("4-verified").await;
    browser.click("form[action$='/approval'] button").await;
    let page = browser.wait_for_text("deletion is under way").await;
    browser.screenshot("5-approved").await;
    let start = page.find("/deletions/").unwrap() + "/deletions/".len();
    let receipt: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    app.wait_for_status(&receipt, "completed").await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM accounts WHERE id = {}",
            account.account_id
        ))
        .await,
        0
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "the console logged errors (CSP?): {errors:?}");

    browser.click("form[action='/staff/logout'] button").await;
    browser.wait_for_text("Staff log-in").await;
    browser.go(&format!("{}/staff/tickets", app.address)).await;
    assert!(browser.url().await.ends_with("/staff/login"));
}

async fn console_pages_let_in_agents_only(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let reference = open_ticket(&app, "nobody@elsewhere.example", "doors@mail.example", "Bye.");
    let anonymous = app.device();
    let to_login = |r: &reqwest::Response| {
        r.status() == StatusCode::SEE_OTHER && r.headers()["location"] == "/staff/login"
    };
    let r = anonymous
        .client
        .get(anonymous.url("/staff/tickets"))
        .send()
        .await
        .unwrap();
    assert!(to_login(&r), "{r:?}");
    let user = app.signed_up_and_logged_in("mark21", "mark21@vsee.com").await;
    let r = user
        .client
        .get(user.url("/staff/tickets/1"))
        .send()
        .await
        .unwrap();
    assert!(to_login(&r), "a user's session is not a staff one: {r:?}");
    let auditor = staff_device(&app, "auditor").await;
    let (status, _) = auditor.get_page("/staff/tickets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let agent = staff_device(&app, "agent").await;
    let (status, html) = agent.get_page("/staff/tickets?status=open&verified=false").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&reference), "{html}");
    let (status, _) = agent.get_page("/staff/tickets?status=pending").await;
    assert_eq!(status.as_u16(), 422);
    // A decision without the page's CSRF token changes nothing.
    let id = agent.get_json(&format!("/api/v1/tickets?q={reference}")).await[0]["id"]
        .as_i64()
        .unwrap();
    let r = agent
        .client
        .post(agent.url(&format!("/staff/tickets/{id}/rejection")))
        .form(&[("reason", "spam")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With it, through the page: rejected, and the page says by whom.
    let page = format!("/staff/tickets/{id}");
    let r = agent
        .submit_form(
            &page,
            &format!("{page}/rejection"),
            &[("reason", "not our customer")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Rejected.") && html.contains("rejected by") && html.contains("not our customer"),
        "{html}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tickets WHERE status = 'rejected'")
            .await,
        1
    );
}

crate::on_both_stacks!(console_pages_let_in_agents_only);
