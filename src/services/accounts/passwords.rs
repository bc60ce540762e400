//! Password hashing (argon2id), deliberately slow and memory-hard: each hash or check takes
//! tens of milliseconds of a core and 19 MiB. It runs on the blocking pool, never on the async
//! threads, and at most one per core at a time. Invariant: a flood of log-ins queues for a
//! core (in arrival order) instead of holding 19 MiB each at once, and the hashes in flight
//! don't take the cores from each other, from the requests around them or from the database.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::{
    domain::Password,
    error::{AppError, AppResult},
};

/// One permit per core, shared by every hash this process computes.
static CORES: OnceLock<Arc<Semaphore>> = OnceLock::new();

/// Runs `hashing` on the blocking pool once a core is free. The permit moves into the blocking
/// task, so a request dropped while its hash runs still holds its core until the hash ends.
async fn on_a_free_core<T: Send + 'static>(hashing: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let cores = CORES.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(Semaphore::new(n))
    });
    let permit = Arc::clone(cores)
        .acquire_owned()
        .await
        .map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || {
        let done = hashing();
        drop(permit);
        done
    })
    .await
    .map_err(AppError::internal)
}

pub async fn hash_password(password: &Password) -> AppResult<String> {
    let pw = password.expose().to_owned();
    on_a_free_core(move || password_auth::generate_hash(pw)).await
}

pub async fn password_matches(password: &str, hash: &str) -> AppResult<bool> {
    let (pw, hash) = (password.to_owned(), hash.to_owned());
    on_a_free_core(move || password_auth::verify_password(pw, &hash).is_ok()).await
}

/// A hash of a password nobody has, verified when the ID is unknown, so an unknown ID takes
/// as long to refuse as a wrong password.
static DECOY_HASH: OnceLock<String> = OnceLock::new();

/// Checks `password` against `hash`, or, when there is no hash (no such account), against a
/// decoy, so that the refusal takes as long either way.
pub async fn password_matches_or_decoy(password: &str, hash: Option<&str>) -> AppResult<bool> {
    match hash {
        Some(hash) => password_matches(password, hash).await,
        None => {
            let decoy = decoy_hash().await?;
            password_matches(password, &decoy).await.map(|_| false)
        }
    }
}

async fn decoy_hash() -> AppResult<String> {
    if let Some(h) = DECOY_HASH.get() {
        return Ok(h.clone());
    }
    let h = on_a_free_core(|| password_auth::generate_hash("decoy password")).await?;
    Ok(DECOY_HASH.get_or_init(|| h).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let hashes = (0..cores * 3).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            on_a_free_core(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for done in futures::future::join_all(hashes).await {
            done.unwrap();
        }
        // Other tests of this process may hold cores too: never more, never none.
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} hashes at once on {cores} cores"
        );
    }

    #[tokio::test]
    async fn a_password_matches_its_hash_and_nothing_else() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(password_matches("correct horse battery", &hash).await.unwrap());
        assert!(!password_matches("wrong horse battery", &hash).await.unwrap());
        assert!(!password_matches_or_decoy("decoy password", None).await.unwrap());
    }
}
