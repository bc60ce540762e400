//! The real `erasure` binary: seeded from the CLI, served, used, stopped with SIGTERM — and
//! its logs hold none of the personal data or secrets that passed through it.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_binary_logs_no_personal_data_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut vars = test_vars(data.path());
    vars.insert("ERASURE_LOG__FORMAT".into(), "json".into());
    vars.insert("RUST_LOG".into(), "debug,hyper=info,h2=info".into());
    let bin = env!("CARGO_BIN_EXE_erasure");

    let secrets = [
        "leaky-id-77",
        "leaky.mcleak@example.org",
        "Leakyfirst",
        "Leakylast",
        "Leaky-Password-9",
    ];
    let seeded = Command::new(bin)
        .args([
            "seed-account",
            "--vsee-id",
            secrets[0],
            "--email",
            secrets[1],
            "--first-name",
            secrets[2],
        ])
        .args([
            "--last-name",
            secrets[3],
            "--password",
            secrets[4],
            "--messages",
            "300",
            "--contacts",
            "4",
        ])
        .args(["--calls", "6", "--devices", "2"])
        .env_clear()
        .envs(&vars)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert!(String::from_utf8_lossy(&seeded.stdout).contains("300 messages"));

    let mut server = Command::new(bin)
        .arg("serve")
        .env_clear()
        .envs(&vars)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let reader = {
        let log = log.clone();
        let stderr = server.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "listening"
                {
                    let _ = port_tx.send(v["fields"]["port"].as_u64().unwrap_or(0));
                }
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        })
    };
    let port = port_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server reports its port");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();

    let r = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"vsee_id": secrets[0], "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"vsee_id": secrets[0], "password": secrets[4]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let session = r
        .cookies()
        .find(|c| c.name() == "erasure_session")
        .unwrap()
        .value()
        .to_owned();
    let r = client
        .post(format!("{base}/api/v1/me/deletion"))
        .json(&json!({"confirm_email": "typo@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = client
        .post(format!("{base}/api/v1/me/deletion"))
        .json(&json!({"confirm_email": secrets[1]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receipt = body["receipt_id"].as_str().unwrap().to_owned();
    try_eventually(Duration::from_secs(15), EVERY, || async {
        let status: Value = client
            .get(format!("{base}/api/v1/deletions/{receipt}"))
            .send()
            .await?
            .json()
            .await?;
        Ok(if status["status"] == "completed" {
            Ok(())
        } else {
            Err(format!("stuck: {status}"))
        })
    })
    .await
    .unwrap();

    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = server.wait().unwrap();
    reader.join().unwrap();
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}");

    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("deletion recorded in the ledger"),
        "the log is being read: {log}"
    );
    for secret in secrets
        .iter()
        .copied()
        .chain([receipt.as_str(), session.as_str()])
    {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
}
