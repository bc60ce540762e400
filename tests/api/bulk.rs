//! Bulk deletion of dormant accounts by an administrator: a dry run shows counts and a preview
//! and changes nothing; the real run gives every account its own request, receipt and ledger
//! entry (actor: the admin, channel: bulk), skips what is not dormant, and drains through a
//! queue held to a small backlog. 100,000 accounts is the bench's; the test runs 300.

use std::time::Duration;

use chrono::Utc;
use erasure::{
    clock::Clock,
    domain::{AccountStatus, Plan},
    models::account,
    startup::Roles,
};
use reqwest::StatusCode;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::{
    helpers::*,
    staff::{STAFF_PASSWORD, create_staff, staff_device},
};

/// `n` accounts named `{prefix}{i}`, created two years ago, with no log-in recorded. Inserted
/// as rows from before encryption (in clear, no blind index, no data key), as in a deployment
/// just upgraded: the service reads them as they are, and its migration job seals them
/// meanwhile (so the test finds them by opening, not by SQL on the clear column).
async fn dormant_accounts(app: &TestApp, prefix: &str, n: usize, plan: Plan) {
    let created = app.clock.now() - chrono::Duration::days(730);
    let rows = (0..n).map(|i| account::ActiveModel {
        vsee_id: Set(format!("{prefix}{i}")),
        email: Set(format!("{prefix}{i}@dormant.example")),
        first_name: Set("Dormant".into()),
        last_name: Set("Holder".into()),
        password_hash: Set("not-a-hash".into()),
        plan: Set(plan),
        offline_notification_email: Set(None),
        offline_notification_enabled: Set(false),
        avatar_file: Set(None),
        status: Set(AccountStatus::Active),
        subscription_cancelled_at: Set(None),
        created_at: Set(created),
        updated_at: Set(created),
        last_login_at: Set(None),
        ..Default::default()
    });
    for chunk in rows.collect::<Vec<_>>().chunks(100) {
        account::Entity::insert_many(chunk.to_vec())
            .exec(&app.state.db.conn)
            .await
            .unwrap();
    }
}

fn cli_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn an_admin_deletes_dormant_accounts_after_a_dry_run(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[("ERASURE_QUEUE__MAX_BACKLOG", "25")]).await;
    dormant_accounts(&app, "sleeper", 300, Plan::Free).await;
    dormant_accounts(&app, "payer", 2, Plan::Paid).await;
    // Active: logged in lately, or logs in while the run is prepared.
    let active = app.signed_up_and_logged_in("awake01", "awake01@vsee.com").await;
    let since = (Utc::now() - chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();

    // The dry run: counts and a preview, nothing changed.
    let out = app.cli(&["accounts", "delete", "--inactive-since", &since, "--dry-run"]);
    let text = cli_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("300 free account(s) with no log-in since"),
        "{text}"
    );
    assert!(
        text.contains("sleeper0") && text.contains("… and 280 more"),
        "{text}"
    );
    assert!(!text.contains("payer") && !text.contains("awake01"), "{text}");
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);
    // --yes needs an enabled administrator, named in the ledger.
    let out = app.cli(&["accounts", "delete", "--inactive-since", &since, "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", cli_text(&out));
    assert!(
        create_staff(&app, "agent@staff.example", "agent", STAFF_PASSWORD)
            .status
            .success()
    );
    let out = app.cli(&[
        "accounts",
        "delete",
        "--inactive-since",
        &since,
        "--yes",
        "--admin",
        "agent@staff.example",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", cli_text(&out));
    assert_eq!(app.count("SELECT COUNT(*) FROM deletion_requests").await, 0);

    // The real run, by an admin: each account its own request, by the admin, through bulk.
    assert!(
        create_staff(&app, "root@staff.example", "admin", STAFF_PASSWORD)
            .status
            .success()
    );
    let out = app.cli(&[
        "accounts",
        "delete",
        "--inactive-since",
        &since,
        "--yes",
        "--admin",
        "root@staff.example",
    ]);
    let text = cli_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("300 deletion(s) requested, 0 skipped"), "{text}");
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE status = 'completed'",
        300,
        Duration::from_secs(180),
    )
    .await;
    let admin_id = app
        .strings("SELECT CAST(id AS TEXT) FROM staff WHERE email = 'root@staff.example'")
        .await;
    assert_eq!(
        app.strings(
            "SELECT DISTINCT actor_kind || '|' || CAST(actor_id AS TEXT) || '|' || channel FROM deletion_requests"
        )
        .await,
        [format!("admin|{}|bulk", admin_id[0])]
    );
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT receipt_hash) FROM deletion_requests")
            .await,
        300,
        "a receipt each"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'account_deleted' AND channel = 'bulk' AND actor_kind = 'admin'")
            .await,
        300
    );
    assert_eq!(app.verify_ledger().await.unwrap(), 300);
    assert_eq!(app.accounts_named("sleeper").await.len(), 0);
    assert_eq!(app.accounts_named("payer").await.len(), 2);
    assert_eq!(active.me().await.status(), StatusCode::OK);

    // The console: preview, a confirmation that must type the count, then the run on the queue.
    dormant_accounts(&app, "napper", 12, Plan::Free).await;
    let admin = staff_device(&app, "admin").await;
    assert_eq!(
        staff_device(&app, "auditor")
            .await
            .get_page("/staff/accounts")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let preview = format!("/staff/accounts?inactive_since={since}");
    let (code, page) = admin.get_page(&preview).await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("<strong>12</strong> account(s)"), "{page}");
    let r = admin
        .submit_form(
            &preview,
            "/staff/accounts/bulk-deletions",
            &[("inactive_since", &since), ("confirm", "11")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("type the number of accounts, 12, to confirm")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM bulk_runs").await,
        1,
        "the CLI's run only"
    );
    let r = admin
        .submit_form(
            &preview,
            "/staff/accounts/bulk-deletions",
            &[("inactive_since", &since), ("confirm", "12")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Started: 12 deletion(s)"));
    app.wait_for_count(
        "SELECT COUNT(*) FROM deletion_requests WHERE status = 'completed'",
        312,
        Duration::from_secs(60),
    )
    .await;
    app.wait_for_count(
        "SELECT COUNT(*) FROM bulk_runs WHERE finished_at IS NOT NULL AND requested = 12",
        1,
        Duration::from_secs(30),
    )
    .await;
}

async fn an_account_that_logs_in_before_its_turn_is_skipped(stack: Stack) {
    let app = spawn_on(stack, Roles::ALL, &[]).await;
    dormant_accounts(&app, "late", 3, Plan::Free).await;
    let since = app.clock.now() - chrono::Duration::days(365);
    let admin = {
        assert!(
            create_staff(&app, "admin@staff.example", "admin", STAFF_PASSWORD)
                .status
                .success()
        );
        app.strings("SELECT CAST(id AS TEXT) FROM staff").await[0]
            .parse::<i64>()
            .unwrap()
    };
    let run = erasure::services::bulk::start(app.state.env(), admin, since, false)
        .await
        .unwrap();
    // late1 logs in after the run started, before its turn.
    erasure::services::sessions::start(
        &app.state.db,
        app.clock.as_ref(),
        app.accounts_named("late1").await[0].id,
        chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let id = uuid::Uuid::parse_str(&run.id).unwrap();
    let done =
        erasure::services::bulk::advance(app.state.env(), &app.state.keys, id, chrono::Duration::zero(), 2)
            .await
            .unwrap();
    assert_eq!(
        (done.requested, done.skipped, done.finished_at.is_some()),
        (2, 0, false)
    );
    let done =
        erasure::services::bulk::advance(app.state.env(), &app.state.keys, id, chrono::Duration::zero(), 2)
            .await
            .unwrap();
    assert_eq!(
        (done.requested, done.skipped, done.finished_at.is_some()),
        (2, 0, true)
    );
    // Running it again opens nothing more.
    let again =
        erasure::services::bulk::advance(app.state.env(), &app.state.keys, id, chrono::Duration::zero(), 2)
            .await
            .unwrap();
    assert_eq!(again.requested, 2);
    let left: Vec<String> = app
        .accounts_named("late")
        .await
        .into_iter()
        .filter(|a| a.status == AccountStatus::Active)
        .map(|a| a.vsee_id)
        .collect();
    assert_eq!(left, ["late1"]);
}

crate::on_both_stacks!(
    an_admin_deletes_dormant_accounts_after_a_dry_run,
    an_account_that_logs_in_before_its_turn_is_skipped,
);
