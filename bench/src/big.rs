//! (e): one account with a million messages: time, peak RSS growth, longest SQL statement.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use erasure::{
    clock::SystemClock,
    config::Settings,
    domain::{Actor, Channel, Email, Password, PersonName, Plan, VseeId},
    models::account,
    services::{
        deletion,
        seed::{self, SeedSpec},
    },
};

use crate::{
    app::{App, StatementStats, app_err, count_status, wait_completed},
    cli::{Shape, TYPICAL},
    purge::{check_raw_rules, raw_delete},
    results::{BigCompare, BigRun},
    stack::StackCtx,
};

/// The child side of `seed_in_child`.
pub async fn seed_child(messages: u64) -> anyhow::Result<i64> {
    let settings = Settings::load()?;
    let state = erasure::startup::build_state(settings, Arc::new(SystemClock)).await?;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
    seed::seed_account(
        state.env(),
        &state.settings.storage.data_dir,
        SeedSpec {
            vsee_id: VseeId::parse(&format!("big{tag}"))?,
            email: Email::parse(&format!("big{tag}@bench.example"))?,
            password: Password::parse("correct horse battery")?,
            first_name: PersonName::parse("Big")?,
            last_name: PersonName::parse("Account")?,
            plan: Plan::Free,
            messages,
            contacts: TYPICAL.contacts,
            calls: TYPICAL.calls,
            devices: TYPICAL.devices,
        },
        &|_| {},
    )
    .await
    .map(|r| r.account_id)
    .map_err(app_err)
}

/// Seeds one big account from a child process (this binary again) on the same database.
pub async fn seed_in_child(ctx: &StackCtx, app: &App, messages: u64) -> anyhow::Result<account::Model> {
    let t = Instant::now();
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--seed-child")
        .arg(messages.to_string())
        .env_clear()
        .envs(&ctx.vars)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    if !output.status.success() {
        bail!("the seeding child failed ({})", output.status);
    }
    let id: i64 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
    eprintln!(
        "    seeded 1 account of {messages} messages in a child process in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    erasure::services::accounts::find(app.state.env(), id)
        .await
        .map_err(crate::app::app_err)?
        .context("the seeded account is missing")
}

pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resets VmHWM to the current RSS; returns that RSS in bytes.
pub fn reset_peak_rss() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

pub fn peak_growth(rss_before: Option<u64>) -> Option<u64> {
    let peak = proc_status_kib("VmHWM:")? * 1024;
    Some(peak.saturating_sub(rss_before?))
}

pub async fn big_account(ctx: &StackCtx) -> anyhow::Result<BigCompare> {
    let shape = Shape {
        messages: ctx.sizes.big_messages,
        ..TYPICAL
    };
    let stats = Arc::new(StatementStats::default());
    let app = App::start(ctx, true, Some(stats.clone())).await?;
    let outcome = async {
        check_raw_rules(&app.state)?;
        // Ours: request to completed, with the workers.
        let account = seed_in_child(ctx, &app, shape.messages).await?;
        let before = count_status(&app.probe, "completed").await?;
        let rss_before = reset_peak_rss();
        stats.start();
        let t0 = Instant::now();
        let receipt = deletion::open_request(
            app.state.env(),
            &app.state.keys,
            &account,
            Actor::AccountHolder,
            Channel::Api,
        )
        .await
        .map_err(app_err)?;
        wait_completed(&app.probe, before + 1, Duration::from_secs(1800)).await?;
        let secs = t0.elapsed().as_secs_f64();
        let (longest, longest_sql, statements) = stats.stop();
        let rss_growth = peak_growth(rss_before);
        let request = deletion::find(&app.state.db, receipt.request_id)
            .await
            .map_err(app_err)?;
        let counts: HashMap<String, i64> = request
            .store_counts
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?
            .unwrap_or_default();
        let files: Vec<&str> = app
            .state
            .purge_plan
            .map
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let rows = counts
            .iter()
            .filter(|(k, _)| !files.contains(&k.as_str()))
            .map(|(_, v)| u64::try_from(*v).unwrap_or(0))
            .sum();
        let ours = BigRun {
            secs,
            rows,
            rss_growth,
            longest,
            longest_sql,
            statements,
        };

        // Baseline: an identical account, seeded after the first is gone, removed by hand.
        let account = seed_in_child(ctx, &app, shape.messages).await?;
        let rss_before = reset_peak_rss();
        stats.start();
        let t0 = Instant::now();
        let rows = raw_delete(&app.state, &account).await?;
        let secs = t0.elapsed().as_secs_f64();
        let (longest, longest_sql, statements) = stats.stop();
        let raw = BigRun {
            secs,
            rows,
            rss_growth: peak_growth(rss_before),
            longest,
            longest_sql,
            statements,
        };
        Ok(BigCompare {
            messages: shape.messages,
            ours,
            raw,
        })
    }
    .await;
    app.shutdown().await?;
    outcome
}
