//! Building the application once, for the binary and the tests alike: settings in, a running
//! HTTP server (on the configured port, or any free one for port 0), the outbox relay and the
//! workers out.

use std::{sync::Arc, time::Duration};

use erasure_jobs::JobQueue;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::SharedClock,
    config::Settings,
    datamap::{self, PurgePlan},
    db::Database,
    http,
    keys::Keys,
    mailer::Mailer,
    metrics::Metrics,
    services::{intake::SenderChecks, processors},
    state::{AppState, Inner},
    throttle::Throttle,
    transparency::LogSigner,
    vault::{FileKeyStore, Tombstones, Vault},
    workers,
};

/// Which parts this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub http: bool,
    pub workers: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        http: true,
        workers: true,
    };
}

/// Opens the database, checks the schema and the data map, and assembles the shared state.
pub async fn build_state(settings: Settings, clock: SharedClock) -> anyhow::Result<AppState> {
    let keys = Keys::load(&settings)?;
    let db = Database::connect(&settings).await?;
    assemble_state(settings, clock, keys, db).await
}

/// `build_state` on a database the caller has opened (and perhaps instrumented) itself.
pub async fn build_state_with(
    settings: Settings,
    clock: SharedClock,
    db: Database,
) -> anyhow::Result<AppState> {
    let keys = Keys::load(&settings)?;
    assemble_state(settings, clock, keys, db).await
}

async fn assemble_state(
    settings: Settings,
    clock: SharedClock,
    keys: Keys,
    db: Database,
) -> anyhow::Result<AppState> {
    if db.sqlite_pool().is_some() {
        // The embedded default looks after its own schema.
        db.migrate().await?;
    } else {
        let pending = db.pending_migrations().await?;
        if pending > 0 {
            anyhow::bail!("the database has {pending} pending migration(s): run `erasure migrate` first");
        }
    }
    let map = datamap::load(&settings.purge.datamap)?;
    datamap::check(&map, &db).await?;
    let purge_plan = PurgePlan {
        map,
        data_dir: settings.storage.data_dir.clone(),
        chunk_size: settings.purge.chunk_size,
        reuse_cooloff: settings.accounts.reuse_cooloff(),
    };
    let key_dir = settings.keys.dir(&settings.storage.data_dir);
    let vault = Vault::new(
        Arc::new(FileKeyStore::open(&key_dir)?),
        Tombstones::in_dir(&key_dir),
        keys.clone(),
        settings.keys.epoch_days,
    );
    let mailer = Mailer::from_settings(&settings)?;
    let queue = open_queue(&settings, &db).await?;
    let throttle = Throttle::new(
        keys.throttle_key(),
        &settings.security,
        settings.audit.lookups_before_throttle,
    );
    let sender_checks = SenderChecks::from_settings(&settings.support.mail_auth)?;
    let log_signer = LogSigner::load(&settings)?;
    let processors = processors::load(
        &settings.notify.processors_file,
        settings.env == crate::config::Environment::Production,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let http_client = reqwest::Client::builder()
        .timeout(settings.notify.timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(AppState::new(Inner {
        settings,
        db,
        clock,
        keys,
        vault,
        log_signer,
        mailer,
        queue,
        purge_plan,
        throttle,
        sender_checks,
        metrics: Metrics::default(),
        processors: processors.into(),
        http_client,
        outbox_written: Notify::new(),
    }))
}

/// apalis-sqlite inside the embedded database, or apalis-redis when queue.url names one.
async fn open_queue(settings: &Settings, db: &Database) -> anyhow::Result<JobQueue> {
    let url = settings.queue.url.expose_secret();
    let options = settings.queue.options();
    if url.is_empty() {
        let Some(pool) = db.sqlite_pool() else {
            anyhow::bail!(
                "queue.url is empty, which means apalis-sqlite inside a SQLite database; \
                 with PostgreSQL set ERASURE_QUEUE__URL=redis://…"
            );
        };
        return Ok(JobQueue::sqlite(pool, options));
    }
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        anyhow::bail!("queue.url must be empty (apalis-sqlite) or start with redis:// or rediss://");
    }
    Ok(JobQueue::redis(url, options).await?)
}

pub struct Application {
    state: AppState,
    roles: Roles,
    listener: Option<TcpListener>,
    port: Option<u16>,
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock, roles: Roles) -> anyhow::Result<Self> {
        let addr = settings.server.addr;
        let state = build_state(settings, clock).await?;
        Self::with_state(state, addr, roles).await
    }

    /// `build` on a database the caller has opened (see `build_state_with`).
    pub async fn build_with_database(
        settings: Settings,
        clock: SharedClock,
        roles: Roles,
        db: Database,
    ) -> anyhow::Result<Self> {
        let addr = settings.server.addr;
        let state = build_state_with(settings, clock, db).await?;
        Self::with_state(state, addr, roles).await
    }

    async fn with_state(state: AppState, addr: std::net::SocketAddr, roles: Roles) -> anyhow::Result<Self> {
        // Before the port opens: a restored backup must not serve an account deleted since.
        let guard = workers::restore_guard::run(&state).await?;
        if guard.restored {
            tracing::warn!(
                deleted_again = guard.deleted_again.len(),
                "restore guard finished"
            );
        }
        let (listener, port) = if roles.http {
            let listener = TcpListener::bind(addr).await?;
            let port = listener.local_addr()?.port();
            (Some(listener), Some(port))
        } else {
            (None, None)
        };
        Ok(Self {
            state,
            roles,
            listener,
            port,
        })
    }

    /// The port the server listens on (the real one when the configured port was 0).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` fires, then stops taking work and lets what runs finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(listener) = self.listener {
            let app = http::app(self.state.clone());
            let server = &self.state.settings.server;
            let limits = http::server::ConnectionLimits {
                max_connections: server.max_connections,
                header_read_timeout: server.header_read_timeout(),
            };
            let stop = shutdown.clone();
            tasks.spawn(http::server::serve(
                listener,
                app,
                limits,
                stop,
                Duration::from_secs(30),
            ));
        }
        // Every process relays: rows its own transactions wrote are pushed at once.
        {
            let (state, stop) = (self.state.clone(), shutdown.clone());
            tasks.spawn(async move {
                workers::relay::run(state, stop).await;
                Ok(())
            });
        }
        if self.roles.workers {
            let (state, stop) = (self.state.clone(), shutdown.clone());
            tasks.spawn(workers::run(state, stop));
            let (state, stop) = (self.state.clone(), shutdown.clone());
            tasks.spawn(async move {
                workers::relay::vacuum(state, stop).await;
                Ok(())
            });
            let (state, stop) = (self.state.clone(), shutdown.clone());
            tasks.spawn(async move {
                workers::mailbox::poll(state, stop).await;
                Ok(())
            });
            // Rows from before encryption are sealed in the background while the service
            // serves (a no-op once done; resumed by the next start if cut off).
            let (state, stop) = (self.state.clone(), shutdown.clone());
            tasks.spawn(async move {
                workers::seal_existing(state, stop).await;
                Ok(())
            });
        }
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = outcome {
                tracing::error!(error = %e, "a component stopped with an error; shutting down");
                shutdown.cancel();
                result = Err(e);
            }
        }
        result
    }
}
