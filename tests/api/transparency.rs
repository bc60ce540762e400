//! The transparency log from the outside: heads, consistency proofs and receipts checked by
//! the offline CLI (no configuration, no database, no server key: only the public key), and
//! the dishonest operator who rewrites history and re-MACs it with the server key.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::Value;

use crate::helpers::*;
use erasure::clock::Clock;

async fn delete_account(app: &TestApp, vsee_id: &str) -> String {
    let email = format!("{vsee_id}@example.org");
    let device = app.signed_up_and_logged_in(vsee_id, &email).await;
    let receipt = device.request_deletion(&email).await;
    app.wait_for_status(&receipt, "completed").await;
    receipt
}

/// Runs the CLI as an auditor would, on another machine: no variables, no configuration.
fn offline(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_erasure"))
        .args(args)
        .env_clear()
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn save(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

async fn a_receipt_verifies_offline_and_a_tampered_one_is_refused(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "first1").await;
    let receipt_id = delete_account(&app, "second2").await;
    delete_account(&app, "third3").await;
    let anyone = app.device();
    let receipt = anyone
        .get_json(&format!("/api/v1/deletions/{receipt_id}/proof"))
        .await;
    assert_eq!(receipt["channel"], "api");
    assert_eq!(receipt["stores"]["accounts"], 1);
    assert_eq!(receipt["ledger"]["seq"], 2);
    // What was kept, and why, as the data map declares it; the ledger entry until it is pruned.
    let kept = receipt["retained"].as_array().unwrap();
    assert!(
        kept.iter()
            .any(|r| r["store"] == "ledger_entries" && r["until"].as_str().is_some_and(|u| u.len() == 10)),
        "{kept:?}"
    );
    assert!(kept.iter().any(|r| r["store"] == "calls" && r["until"].is_null()));
    assert!(receipt["head"]["size"].as_u64().unwrap() >= 2);
    // The status page offers it for download.
    let (_, html) = anyone.get_page(&format!("/deletions/{receipt_id}")).await;
    assert!(
        html.contains(&format!("href=\"/api/v1/deletions/{receipt_id}/proof\" download")),
        "{html}"
    );
    let key = anyone.get_json("/.well-known/erasure-log-key").await;
    assert_eq!(key, anyone.get_json("/api/v1/log/key").await);
    assert_eq!(key["algorithm"], "ed25519");

    let dir = tempfile::tempdir().unwrap();
    let key_file = save(dir.path(), "key.json", &key);
    let key_file = key_file.to_str().unwrap();
    let good = save(dir.path(), "receipt.json", &receipt);
    let (code, out) = offline(
        dir.path(),
        &["receipt", "verify", good.to_str().unwrap(), "--key", key_file],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipt verified"), "{out}");
    // The key as bare hex does as well.
    let hex = key["public_key"].as_str().unwrap();
    let (code, out) = offline(
        dir.path(),
        &["receipt", "verify", good.to_str().unwrap(), "--key", hex],
    );
    assert_eq!(code, 0, "{out}");

    type Tampering = (&'static str, fn(&mut Value));
    let tamperings: [Tampering; 6] = [
        ("what was kept", |r| r["retained"] = Value::Array(Vec::new())),
        ("a count", |r| r["stores"]["accounts"] = 0.into()),
        ("the completion time", |r| {
            r["completed_at"] = "2020-01-01T00:00:00.000000Z".into();
        }),
        ("the leaf and the count together", |r| {
            let body = r["ledger"]["body"]
                .as_str()
                .unwrap()
                .replace("\"accounts\":1", "\"accounts\":0");
            r["ledger"]["body"] = body.into();
            r["stores"]["accounts"] = 0.into();
        }),
        ("the head's root", |r| {
            r["head"]["root"] = "00".repeat(32).into();
        }),
        ("the proof", |r| {
            r["inclusion_proof"][0] = "11".repeat(32).into();
        }),
    ];
    for (what, tamper) in tamperings {
        let mut forged = receipt.clone();
        tamper(&mut forged);
        let path = save(dir.path(), "forged.json", &forged);
        let (code, out) = offline(
            dir.path(),
            &["receipt", "verify", path.to_str().unwrap(), "--key", key_file],
        );
        assert_eq!(code, 1, "{what} changed, yet: {out}");
        assert!(out.contains("does not verify"), "{out}");
    }
    // Another key refuses it; unreadable input is exit 2.
    let other = "ab".repeat(32);
    let (code, _) = offline(
        dir.path(),
        &["receipt", "verify", good.to_str().unwrap(), "--key", &other],
    );
    assert_ne!(code, 0);
    let (code, _) = offline(
        dir.path(),
        &["receipt", "verify", "missing.json", "--key", key_file],
    );
    assert_eq!(code, 2);

    // Unknown receipts are not found; a deletion still running has no receipt yet.
    assert_eq!(
        error_code(
            anyone
                .client
                .get(anyone.url("/api/v1/deletions/nope/proof"))
                .send()
                .await
                .unwrap()
        )
        .await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

/// The heads of the log, as an auditor keeps them.
async fn head(app: &TestApp) -> Value {
    app.device().get_json("/api/v1/log/head").await
}

async fn consistency(app: &TestApp, from: u64, to: u64) -> Value {
    app.device()
        .get_json(&format!("/api/v1/log/consistency?from={from}&to={to}"))
        .await
}

/// What a dishonest operator with the server key can do: change entry `seq`, then re-MAC
/// every entry from there (each body names the MAC before it), rebuild the tree and re-sign.
async fn rewrite_history(app: &TestApp, seq: i64) {
    use erasure::models::ledger_entry;
    let entries = ledger_entry::Entity::find()
        .order_by_asc(ledger_entry::Column::Seq)
        .all(&app.state.db.conn)
        .await
        .unwrap();
    let mut prev_hash: Option<String> = None;
    for e in entries.into_iter().filter(|e| e.seq >= seq) {
        let mut body = e.body.clone();
        if e.seq == seq {
            body = body.replace("\"accounts\":1", "\"accounts\":0");
            assert_ne!(body, e.body);
        }
        let link = prev_hash.clone().unwrap_or_else(|| e.prev_hash.clone());
        body = body.replace(
            &format!("\"prev_hash\":\"{}\"", e.prev_hash),
            &format!("\"prev_hash\":\"{link}\""),
        );
        let hash = app.state.keys.ledger_mac(&link, &body);
        app.execute(&format!(
            "UPDATE ledger_entries SET body = '{body}', prev_hash = '{link}', hash = '{hash}' WHERE seq = {}",
            e.seq
        ))
        .await;
        prev_hash = Some(hash);
    }
    app.execute("DELETE FROM log_nodes").await;
    app.execute("DELETE FROM log_heads").await;
    erasure::services::ledger::log::sign_head(&app.state.db, &app.state.log_signer, app.clock.now())
        .await
        .unwrap();
}

async fn consistency_proofs_hold_across_appends_and_a_rewritten_history_is_refused(stack: Stack) {
    let app = spawn_app_on(stack).await;
    let empty = head(&app).await;
    assert_eq!(empty["size"], 0);
    for id in ["one1", "two2", "three3"] {
        delete_account(&app, id).await;
    }
    let kept = head(&app).await;
    assert_eq!(kept["size"], 3);
    for id in ["four4", "five5"] {
        delete_account(&app, id).await;
    }
    let newer = head(&app).await;
    assert_eq!(newer["size"], 5);

    let dir = tempfile::tempdir().unwrap();
    let key = save(
        dir.path(),
        "key.json",
        &app.device().get_json("/.well-known/erasure-log-key").await,
    );
    let key = key.to_str().unwrap();
    let old = save(dir.path(), "old.json", &kept);
    let old = old.to_str().unwrap();
    for from in [0u64, 1, 2, 3, 5] {
        let kept_at = if from == 3 {
            kept.clone()
        } else {
            continue_head(&app, from).await
        };
        let doc = consistency(&app, from, 5).await;
        assert_eq!(doc["head"], newer);
        let older = save(dir.path(), "older.json", &kept_at);
        let new = save(dir.path(), "new.json", &doc);
        let (code, out) = offline(
            dir.path(),
            &[
                "audit",
                "consistency",
                older.to_str().unwrap(),
                new.to_str().unwrap(),
                "--key",
                key,
            ],
        );
        assert_eq!(code, 0, "from {from}: {out}");
    }
    let out = app.cli(&["audit", "verify", "--head", old]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("extends the kept head of 3 entries"));

    // The operator rewrites entry 2 and re-MACs everything after it: the chain still verifies.
    rewrite_history(&app, 2).await;
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // The head the auditor kept does not.
    let out = app.cli(&["audit", "verify", "--head", old]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("history was rewritten"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let forged_head = head(&app).await;
    assert_eq!(forged_head["size"], 5);
    assert_ne!(forged_head["root"], newer["root"]);
    let new = save(dir.path(), "new.json", &consistency(&app, 3, 5).await);
    let (code, out) = offline(
        dir.path(),
        &["audit", "consistency", old, new.to_str().unwrap(), "--key", key],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not verify"), "{out}");
    // Two heads of the same size with different roots are proof of a rewrite on their own.
    let kept_new = save(dir.path(), "kept_new.json", &newer);
    let (code, out) = offline(
        dir.path(),
        &[
            "audit",
            "consistency",
            kept_new.to_str().unwrap(),
            new.to_str().unwrap(),
            "--key",
            key,
        ],
    );
    assert_ne!(code, 0, "{out}");
}

/// A head at `size`, signed now if none was (a test's stand-in for one kept at that time).
async fn continue_head(app: &TestApp, size: u64) -> Value {
    let head = erasure::services::ledger::log::head_at(&app.state.db.conn, size)
        .await
        .unwrap();
    let head = match head {
        Some(h) => h,
        None => {
            let root = erasure::services::ledger::log::root_at(&app.state.db.conn, size)
                .await
                .unwrap();
            app.state.log_signer.sign(size, &root, app.clock.now())
        }
    };
    serde_json::to_value(head).unwrap()
}

async fn the_log_refuses_bad_ranges_with_codes(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "solo1").await;
    let anyone = app.device();
    let get = |path: &'static str| {
        let anyone = &anyone;
        async move { error_code(anyone.client.get(anyone.url(path)).send().await.unwrap()).await }
    };
    assert_eq!(
        get("/api/v1/log/consistency?from=2&to=1").await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
    assert_eq!(
        get("/api/v1/log/consistency?from=0&to=7").await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        get("/api/v1/log/consistency?from=x&to=1").await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
    // The ledger job signs a head after its entry; asking signs one if that has not landed
    // yet. Either way, one head for size 1, whoever asks again.
    assert_eq!(head(&app).await["size"], 1);
    let before = app.count("SELECT COUNT(*) FROM log_heads").await;
    assert_eq!(head(&app).await["size"], 1);
    assert_eq!(head(&app).await["size"], 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM log_heads").await,
        before,
        "a head is signed once per size"
    );
}

/// Past `audit.retention_days` an entry loses its body and its subject's pseudonyms; the
/// chain, the tree, a receipt handed out earlier and a head kept earlier all still verify.
async fn pruning_keeps_the_chain_the_tree_and_earlier_proofs(stack: Stack) {
    let app = spawn_app_on(stack).await;
    delete_account(&app, "old1").await;
    delete_account(&app, "old2").await;
    let receipt_id = delete_account(&app, "old3").await;
    let anyone = app.device();
    let receipt = anyone
        .get_json(&format!("/api/v1/deletions/{receipt_id}/proof"))
        .await;
    let kept = head(&app).await;

    app.clock.advance(chrono::Duration::days(1096));
    let now = app.clock.now();
    let pruned =
        erasure::services::ledger::prune::prune(&app.state.db, now - chrono::Duration::days(1095), now)
            .await
            .unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM ledger_entries WHERE body = '' AND subject = '' AND pruned_at IS NOT NULL"
        )
        .await,
        3
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM ledger_subjects").await, 0);
    // Nothing left to prune: a second pass changes nothing.
    assert_eq!(
        erasure::services::ledger::prune::prune(&app.state.db, now - chrono::Duration::days(1095), now)
            .await
            .unwrap(),
        0
    );
    delete_account(&app, "new4").await;
    assert_eq!(app.verify_ledger().await, Ok(4));

    let dir = tempfile::tempdir().unwrap();
    let key = save(dir.path(), "key.json", &anyone.get_json("/api/v1/log/key").await);
    let key = key.to_str().unwrap();
    let kept_path = save(dir.path(), "kept.json", &kept);
    let out = app.cli(&["audit", "verify", "--head", kept_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let newest = head(&app).await;
    let doc = consistency(&app, 3, newest["size"].as_u64().unwrap()).await;
    let new_path = save(dir.path(), "new.json", &doc);
    let (code, out) = offline(
        dir.path(),
        &[
            "audit",
            "consistency",
            kept_path.to_str().unwrap(),
            new_path.to_str().unwrap(),
            "--key",
            key,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let receipt_path = save(dir.path(), "receipt.json", &receipt);
    let (code, out) = offline(
        dir.path(),
        &["receipt", "verify", receipt_path.to_str().unwrap(), "--key", key],
    );
    assert_eq!(
        code, 0,
        "a receipt handed out before pruning still verifies: {out}"
    );

    // The pruned deletion cannot be shown or looked up any more.
    let r = anyone
        .client
        .get(anyone.url(&format!("/api/v1/deletions/{receipt_id}/proof")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.0, StatusCode::CONFLICT);
    let auditor = crate::staff::staff_device(&app, "auditor").await;
    let found = auditor
        .post_json(
            "/api/v1/ledger/lookup",
            serde_json::json!({ "identifier": "old3" }),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(found["deleted"], false);
    let entry = auditor.get_json("/api/v1/ledger/3").await;
    assert_eq!(entry["body"], Value::Null);
    assert!(entry["pruned_at"].is_string());
    assert_eq!(entry["leaf_hash"].as_str().unwrap().len(), 64);
    let export = auditor
        .client
        .get(auditor.url("/api/v1/ledger/export?format=ndjson"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(first["entry"], Value::Null);
    assert!(first["pruned_at"].is_string());
}

crate::on_both_stacks!(
    pruning_keeps_the_chain_the_tree_and_earlier_proofs,
    a_receipt_verifies_offline_and_a_tampered_one_is_refused,
    consistency_proofs_hold_across_appends_and_a_rewritten_history_is_refused,
    the_log_refuses_bad_ranges_with_codes,
);
