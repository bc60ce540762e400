//! What the integration tests (`tests/api`) and the bench (`bench/`) share, in one copy:
//!
//! - [`ServerSpace`]: a fresh PostgreSQL database and a Redis key prefix of one's own on shared
//!   servers, both removed afterwards;
//! - [`SmtpSink`]: a real SMTP server on a free loopback port (`tests/support/smtp_sink.py`);
//! - [`Process`]: a real `erasure` process (serve, worker, …) with its JSON log captured;
//! - [`eventually`], [`try_eventually`] and [`eventually_blocking`]: waiting for something to
//!   become true.
//!
//! Errors are `anyhow` errors saying what failed; the panicking conveniences are for tests.

mod eventually;
mod process;
mod provision;
mod smtp;

pub use eventually::{EVERY, eventually, eventually_blocking, try_eventually};
pub use process::Process;
pub use provision::{ServerSpace, ServerUrls, create_database, delete_redis_keys, drop_database};
pub use smtp::{SMTP_SINK, SmtpSink};
