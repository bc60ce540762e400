//! Tells the integration tests whether the server stack (PostgreSQL + Redis) is named, so its
//! tests show as ignored, with the reason, when it is not, instead of passing without running.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(erasure_server_stack)");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=ERASURE_TEST_REDIS_URL");
    let named = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if named("ERASURE_TEST_DATABASE_URL") && named("ERASURE_TEST_REDIS_URL") {
        println!("cargo::rustc-cfg=erasure_server_stack");
    }
}
