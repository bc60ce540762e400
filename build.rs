//! Tells the integration tests whether the server stack (PostgreSQL + Redis), a browser
//! (chromedriver) and an IMAP server (dovecot) are named, so their tests show as ignored, with the reason, when they are
//! not, instead of passing without running.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(erasure_server_stack)");
    println!("cargo::rustc-check-cfg=cfg(erasure_browser)");
    println!("cargo::rustc-check-cfg=cfg(erasure_imap)");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_DOVECOT");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_CHROMEDRIVER");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_REDIS_URL");
    let named = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if named("ERASURE_TEST_DATABASE_URL") && named("ERASURE_TEST_REDIS_URL") {
        println!("cargo::rustc-cfg=erasure_server_stack");
    }
    if named("ERASURE_TEST_CHROMEDRIVER") {
        println!("cargo::rustc-cfg=erasure_browser");
    }
    if named("ERASURE_TEST_DOVECOT") {
        println!("cargo::rustc-cfg=erasure_imap");
    }
}
