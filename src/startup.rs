//! Building the application once, for the binary and the tests alike: settings in, a running
//! HTTP server (on the configured port, or any free one for port 0), the outbox relay and the
//! workers out.

use std::time::Duration;

use erasure_jobs::{JobQueue, QueueOptions};
use poem::{
    Server,
    listener::{Acceptor, AcceptorExt, Listener, TcpListener},
};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::SharedClock,
    config::Settings,
    db::Database,
    http,
    keys::Keys,
    services::{datamap::DataMap, mail::Mailer, throttle::LoginThrottle},
    state::{AppState, Inner},
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
    if db.sqlite_pool().is_some() {
        // The embedded default looks after its own schema.
        db.migrate().await?;
    } else {
        let pending = db.pending_migrations().await?;
        if pending > 0 {
            anyhow::bail!("the database has {pending} pending migration(s): run `erasure migrate` first");
        }
    }
    let datamap = DataMap::load(&settings.purge.datamap)?;
    datamap.check(&db).await?;
    let mailer = Mailer::from_settings(&settings)?;
    if !settings.queue.url.expose_secret().is_empty() {
        anyhow::bail!(
            "queue.url: only the embedded apalis-sqlite queue is available in this version; leave it empty"
        );
    }
    let Some(pool) = db.sqlite_pool() else {
        anyhow::bail!("a PostgreSQL database needs a queue.url");
    };
    let queue = JobQueue::sqlite(
        pool,
        QueueOptions {
            batch_size: settings.queue.batch_size,
            heartbeat_interval: Duration::from_secs(settings.queue.heartbeat_interval_secs),
            missed_heartbeats: settings.queue.missed_heartbeats,
            max_attempts: settings.queue.max_attempts,
        },
    );
    let login_throttle = LoginThrottle::new(
        settings.security.login_max_failures,
        chrono::Duration::minutes(settings.security.login_window_minutes),
    );
    Ok(AppState::new(Inner {
        settings,
        db,
        clock,
        keys,
        mailer,
        queue,
        datamap,
        login_throttle,
        outbox_written: Notify::new(),
    }))
}

pub struct Application {
    state: AppState,
    roles: Roles,
    acceptor: Option<poem::listener::BoxAcceptor>,
    port: Option<u16>,
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock, roles: Roles) -> anyhow::Result<Self> {
        let addr = settings.server.addr;
        let state = build_state(settings, clock).await?;
        let (acceptor, port) = if roles.http {
            let acceptor = TcpListener::bind(addr).into_acceptor().await?;
            let port = acceptor
                .local_addr()
                .first()
                .and_then(|a| a.as_socket_addr().map(std::net::SocketAddr::port));
            (Some(acceptor.boxed()), port)
        } else {
            (None, None)
        };
        Ok(Self {
            state,
            roles,
            acceptor,
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
        if let Some(acceptor) = self.acceptor {
            let app = http::app(self.state.clone());
            let stop = shutdown.clone();
            tasks.spawn(async move {
                Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(app, stop.cancelled_owned(), Some(Duration::from_secs(30)))
                    .await
                    .map_err(anyhow::Error::from)
            });
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
