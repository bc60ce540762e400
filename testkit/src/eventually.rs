//! Waiting for something that happens in the background (a job, another process, an email).

use std::{future::Future, time::Duration};

/// How often [`eventually`] looks.
pub const EVERY: Duration = Duration::from_millis(25);

/// Looks with `probe` every [`EVERY`] until it gives a value, and returns it; panics with
/// "`what`: not within `within`" when it has not after `within`. For tests.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let timed_out = format!("{what}: not within {within:?}");
    let waited = try_eventually(within, EVERY, || {
        let look = probe();
        let timed_out = &timed_out;
        async move { Ok(look.await.ok_or_else(|| timed_out.clone())) }
    })
    .await;
    match waited {
        Ok(value) => value,
        Err(e) => panic!("{e:#}"),
    }
}

/// Looks with `probe` every `every` until it answers `Ok(Ok(value))`, and returns the value.
///
/// `Ok(Err(note))` means not yet, `note` saying what the probe saw instead: when `within` has
/// passed, the wait fails with the last note as its message. `Err` ends the wait at once
/// with that error.
pub async fn try_eventually<T, F, Fut>(within: Duration, every: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match probe().await? {
            Ok(value) => return Ok(value),
            Err(note) if tokio::time::Instant::now() >= deadline => anyhow::bail!("{note}"),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`eventually`] for code that cannot await (a `Drop`, a server started from a plain
/// function): looks with `probe` every [`EVERY`], blocking the thread in between.
pub fn eventually_blocking<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(EVERY);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_value() {
        let looks = AtomicU32::new(0);
        let n = eventually("three looks", Duration::from_secs(5), || async {
            let n = looks.fetch_add(1, Ordering::Relaxed) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn fails_with_the_last_note() {
        let looks = AtomicU32::new(0);
        let waited: anyhow::Result<()> =
            try_eventually(Duration::from_millis(30), Duration::from_millis(5), || async {
                let n = looks.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(Err(format!("look {n}")))
            })
            .await;
        let message = waited.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert_eq!(message, format!("look {}", looks.load(Ordering::Relaxed)));
        assert!(looks.load(Ordering::Relaxed) >= 2);
    }

    #[tokio::test]
    async fn an_error_ends_the_wait_at_once() {
        let looks = AtomicU32::new(0);
        let waited: anyhow::Result<()> =
            try_eventually(Duration::from_secs(5), Duration::from_millis(5), || async {
                looks.fetch_add(1, Ordering::Relaxed);
                Err(anyhow::anyhow!("broken"))
            })
            .await;
        assert!(waited.is_err());
        assert_eq!(looks.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn eventually_blocking_returns_the_first_value() {
        let mut looks = 0;
        let n = eventually_blocking("three looks", Duration::from_secs(5), || {
            looks += 1;
            (looks == 3).then_some(looks)
        });
        assert_eq!(n, 3);
    }

    #[test]
    #[should_panic(expected = "never: not within")]
    fn eventually_blocking_panics_naming_what() {
        eventually_blocking("never", Duration::from_millis(20), || None::<()>);
    }

    #[tokio::test]
    #[should_panic(expected = "nothing: not within")]
    async fn eventually_panics_naming_what() {
        eventually("nothing", Duration::from_millis(20), || async { None::<()> }).await;
    }
}
