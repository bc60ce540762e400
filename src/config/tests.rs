//! The configuration's loading rules, each with its case.

use super::*;
use secrecy::ExposeSecret;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_documented_values() {
    let s = Settings::load_from(&vars(&[])).unwrap();
    assert_eq!(s.server.addr.to_string(), "127.0.0.1:3000");
    assert_eq!(
        s.database.url.expose_secret(),
        "sqlite://data/erasure.db?mode=rwc"
    );
    assert_eq!(s.queue.url.expose_secret(), "");
    assert_eq!(s.mail.url.expose_secret(), "file://data/outbox");
    assert_eq!(s.support.email, "help@vsee.com");
    assert_eq!(s.env, Environment::Development);
}

#[test]
fn environment_variables_override_files() {
    let s = Settings::load_from(&vars(&[
        ("ERASURE_ENV", "test"),
        ("ERASURE_SERVER__ADDR", "127.0.0.1:4000"),
        ("ERASURE_QUEUE__BATCH_SIZE", "42"),
        ("ERASURE_MAIL__URL", "smtp://127.0.0.1:2525"),
    ]))
    .unwrap();
    assert_eq!(s.server.addr.port(), 4000);
    assert_eq!(s.queue.batch_size, 42);
    assert_eq!(s.queue.poll_interval_ms, 25, "test.toml applies");
    assert_eq!(s.mail.url.expose_secret(), "smtp://127.0.0.1:2525");
}

#[test]
fn retry_backoff_doubles_up_to_its_cap() {
    let s = Settings::load_from(&vars(&[
        ("ERASURE_QUEUE__RETRY_BACKOFF_MS", "100"),
        ("ERASURE_QUEUE__RETRY_BACKOFF_MAX_MS", "500"),
    ]))
    .unwrap();
    let ms: Vec<u128> = (1..=5).map(|a| s.queue.retry_backoff(a).as_millis()).collect();
    assert_eq!(ms, [100, 200, 400, 500, 500]);
}

#[test]
fn a_backlog_limit_apalis_redis_cannot_take_is_refused() {
    let err = Settings::load_from(&vars(&[("ERASURE_QUEUE__MAX_BACKLOG", "8000")])).unwrap_err();
    assert!(err.to_string().contains("max_backlog"), "{err}");
}

#[test]
fn a_retention_beyond_ten_years_is_refused() {
    let err = Settings::load_from(&vars(&[("ERASURE_QUEUE__RETENTION_HOURS", "999999999999")])).unwrap_err();
    assert!(err.to_string().contains("retention_hours"), "{err}");
}

#[test]
fn unknown_keys_are_rejected() {
    let err = Settings::load_from(&vars(&[("ERASURE_SERVER__ADRR", "x")])).unwrap_err();
    assert!(err.to_string().contains("adrr"), "{err}");
}

#[test]
fn an_unknown_environment_is_rejected() {
    assert!(Settings::load_from(&vars(&[("ERASURE_ENV", "staging")])).is_err());
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let s = Settings::load_from(&vars(&[("ERASURE_SERVER__KEY", "00ff")])).unwrap();
    assert!(!format!("{s:?}").contains("00ff"));
}
