//! A fresh PostgreSQL database and a Redis key prefix of one's own on shared servers, so runs
//! (tests in parallel, a bench beside them) never see each other's data.

use anyhow::Context;

/// The shared servers: the admin URL of a PostgreSQL server (databases are created on it) and
/// the URL of a Redis server.
#[derive(Debug, Clone)]
pub struct ServerUrls {
    pub database: String,
    pub redis: String,
}

/// A database and a Redis key prefix provisioned for one run; both are removed by
/// [`release`](Self::release) or, failing that, when this is dropped.
#[derive(Debug)]
pub struct ServerSpace {
    admin_url: String,
    /// The database's name.
    pub database: String,
    /// The database's URL.
    pub database_url: String,
    pub redis_url: String,
    /// Every Redis key of this run starts with it (`queue.namespace`).
    pub namespace: String,
    released: bool,
}

impl ServerSpace {
    /// Creates the database `erasure_{tag}_<uuid>` and picks the key prefix
    /// `erasure-{tag}-<uuid>:`.
    pub async fn provision(urls: &ServerUrls, tag: &str) -> anyhow::Result<Self> {
        let unique = uuid::Uuid::new_v4().simple();
        let database = format!("erasure_{tag}_{unique}");
        let database_url = create_database(&urls.database, &database).await?;
        Ok(Self {
            admin_url: urls.database.clone(),
            database,
            database_url,
            redis_url: urls.redis.clone(),
            namespace: format!("erasure-{tag}-{unique}:"),
            released: false,
        })
    }

    /// The application settings that point at this space.
    pub fn vars(&self) -> [(&'static str, String); 3] {
        [
            ("ERASURE_DATABASE__URL", self.database_url.clone()),
            ("ERASURE_QUEUE__URL", self.redis_url.clone()),
            ("ERASURE_QUEUE__NAMESPACE", self.namespace.clone()),
        ]
    }

    /// Drops the database (WITH (FORCE): whoever is still connected) and deletes the keys.
    /// Returns what could not be removed, each error saying what.
    pub async fn release(mut self) -> Vec<anyhow::Error> {
        self.released = true;
        self.remove().await
    }

    async fn remove(&self) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        if let Err(e) = drop_database(&self.admin_url, &self.database).await {
            errors.push(e.context(format!("dropping database {}", self.database)));
        }
        if let Err(e) = delete_redis_keys(&self.redis_url, &self.namespace).await {
            errors.push(e.context(format!("deleting Redis keys {}*", self.namespace)));
        }
        errors
    }
}

impl Drop for ServerSpace {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Drop may run inside a runtime, which cannot block on itself: clean up from a thread
        // with a runtime of its own. Nothing is left to report errors to.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                rt.block_on(self.remove());
            });
        });
    }
}

/// Creates the database `name` on the PostgreSQL server of `admin_url`; returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .context("connecting to the PostgreSQL admin URL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await
        .with_context(|| format!("creating database {name}"))?;
    pool.close().await;
    let mut url = url::Url::parse(admin_url).context("the PostgreSQL admin URL is not a URL")?;
    url.set_path(name);
    Ok(url.to_string())
}

/// Drops the database `name`, disconnecting whoever is still connected to it.
pub async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

/// Deletes every key that starts with `prefix`.
pub async fn delete_redis_keys(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
