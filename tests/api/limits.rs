//! Bounded requests: every body is bounded in size and time, slow or half-open clients are
//! dropped, and the number of connections is capped.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let app = spawn_app().await;
    let device = app.device();
    let big = format!(
        r#"{{"vsee_id":"mark08","email":"mark@vsee.com","password":"{}"}}"#,
        "x".repeat(70_000)
    );
    let r = device
        .client
        .post(device.url("/api/v1/accounts"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // Without a Content-Length (chunked), the limit applies as the body arrives.
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let answer = send_body(port, false, 100_000).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // Pages too, with a page.
    let r = device
        .client
        .post(device.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("vsee_id={}", "a".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("larger than"));
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 0);

    // The limit is configuration.
    let roomy = spawn_app_with(
        erasure::startup::Roles::ALL,
        &[("ERASURE_SERVER__MAX_BODY_BYTES", "1024")],
    )
    .await;
    let r = roomy
        .device()
        .client
        .post(roomy.device().url("/api/v1/accounts"))
        .header("content-type", "application/json")
        .body("x".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `total` bytes of body (declared, or chunked), ignoring the server closing early.
async fn send_body(port: u16, declared: bool, total: usize) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = if declared {
        format!(
            "POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n"
        )
    } else {
        "POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned()
    };
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < total {
        let write = if declared {
            stream.write_all(&chunk).await
        } else {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            stream.write_all(&framed).await
        };
        if write.is_err() {
            break; // The server answered and closed: the rest is not read.
        }
        sent += chunk.len();
    }
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .map(|r| r.unwrap_or(0))
        .unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_body_leaves_the_memory_of_the_server_flat() {
    let app = spawn_state_only(Stack::Sqlite, &[]).await;
    let mut vars = app.vars.clone();
    vars.insert("ERASURE_SERVER__ADDR".into(), "127.0.0.1:0".into());
    let server = Process::start(&["serve", "--no-workers"], &vars, true);
    let port = server.port.unwrap();
    // Warm up: the first requests allocate what every request shares.
    reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    let before = rss_kib(server.child.id());
    for declared in [true, false] {
        let answer = send_body(port, declared, 200 << 20).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "declared={declared}: {answer:?}"
        );
    }
    let after = rss_kib(server.child.id());
    let growth = after.saturating_sub(before);
    figure!("RSS before {before} KiB, after two 200 MB bodies {after} KiB: +{growth} KiB");
    assert!(growth < 20 * 1024, "RSS grew by {growth} KiB");
}

/// Clients that open a connection and never finish their headers are dropped after
/// `server.header_read_timeout_secs`; the cap on connections bounds how many are held at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_and_slow_clients_are_dropped() {
    let app = spawn_state_only(Stack::Sqlite, &[]).await;
    let mut vars = app.vars.clone();
    vars.insert("ERASURE_SERVER__ADDR".into(), "127.0.0.1:0".into());
    vars.insert("ERASURE_SERVER__HEADER_READ_TIMEOUT_SECS".into(), "1".into());
    vars.insert("ERASURE_SERVER__MAX_CONNECTIONS".into(), "100".into());
    let server = Process::start(&["serve", "--no-workers"], &vars, true);
    let port = server.port.unwrap();

    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..300 {
        clients.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            // Half a request line and header, then silence (or a byte now and then).
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            loop {
                if i % 2 == 1 {
                    let _ = stream.write_all(b"a").await;
                }
                match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                    Ok(Ok(_)) => {}
                    Err(_) => {}
                }
                if started.elapsed() > Duration::from_secs(60) {
                    return started.elapsed();
                }
            }
        }));
    }
    // Meanwhile a well-behaved client is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ok = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let mut slowest = Duration::ZERO;
    for c in clients {
        slowest = slowest.max(c.await.unwrap());
    }
    figure!(
        "300 half-open connections (cap 100, 1 s header timeout): the last was dropped after {slowest:?}"
    );
    assert!(
        slowest < Duration::from_secs(20),
        "a slow client was held for {slowest:?}"
    );
}
