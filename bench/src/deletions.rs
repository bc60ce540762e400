//! (b), (f): complete deletions, request to ledger entry.

use std::time::{Duration, Instant};

use erasure::{
    domain::{Actor, Channel},
    models::deletion_request,
    services::deletion,
};
use sea_orm::EntityTrait;

use crate::{
    app::{App, app_err, count_status, seed_accounts, wait_completed},
    cli::Shape,
    results::DeletionRun,
    stack::StackCtx,
    table::debug_rows,
};

pub async fn deletions(ctx: &StackCtx, shape: Shape, k: usize) -> anyhow::Result<DeletionRun> {
    let app = App::start(ctx, true, None).await?;
    let outcome = async {
        let accounts = seed_accounts(&app.state, shape, k).await?;
        let before = count_status(&app.probe, "completed").await?;
        let t0 = Instant::now();
        for account in &accounts {
            deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
        }
        wait_completed(&app.probe, before + k as u64, Duration::from_secs(1200)).await?;
        if std::env::var("BENCH_DEBUG").is_ok() {
            let rows = deletion_request::Entity::find().all(&app.probe.conn).await?;
            debug_rows(&rows);
        }
        Ok(DeletionRun {
            accounts: k,
            secs: t0.elapsed().as_secs_f64(),
        })
    }
    .await;
    app.shutdown().await?;
    outcome
}
