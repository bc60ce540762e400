//! Downstream processors (GDPR Art. 19): each completed deletion is sent, signed, to local
//! receivers the test starts; retries until a 2xx, a dead delivery after the last attempt,
//! and acknowledgements in the ledger and in the receipt, which still verifies offline.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use erasure::{clock::Clock, services::processors, startup::Roles, transparency::receipt::Receipt};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::{helpers::*, staff::staff_device};

const BILLING_SECRET: &str = "billing-secret-0123456789abcdef0123";
const ANALYTICS_SECRET: &str = "analytics-secret-0123456789abcdef01";

type Seen = Arc<Mutex<Vec<(hyper::HeaderMap, Vec<u8>)>>>;

/// An HTTP endpoint on loopback answering each request with the next status of `answers`
/// (the last one repeats), keeping what it received.
struct Receiver {
    url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver(answers: Vec<u16>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, answers) = (kept.clone(), answers.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, answers) = (seen.clone(), answers.clone());
                        async move {
                            use http_body_util::BodyExt;
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await.unwrap().to_bytes().to_vec();
                            let n = {
                                let mut seen = seen.lock().unwrap();
                                seen.push((parts.headers, bytes));
                                seen.len()
                            };
                            let status = *answers.get(n - 1).or(answers.last()).unwrap();
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Receiver { url, seen, task }
}

async fn processors_are_told_signed_retried_and_acknowledged_in_the_receipt(stack: Stack) {
    // Billing fails twice, then acknowledges; analytics never does.
    let billing = receiver(vec![500, 502, 200]).await;
    let analytics = receiver(vec![503]).await;
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("processors.toml");
    std::fs::write(
        &file,
        format!(
            "[[processor]]\nname = \"billing\"\nurl = \"{}\"\nsecret = \"{BILLING_SECRET}\"\n\n\
             [[processor]]\nname = \"analytics\"\nurl = \"{}\"\nsecret = \"{ANALYTICS_SECRET}\"\n",
            billing.url, analytics.url
        ),
    )
    .unwrap();
    let app = spawn_on(
        stack,
        Roles::ALL,
        &[
            ("ERASURE_NOTIFY__PROCESSORS_FILE", file.to_str().unwrap()),
            ("ERASURE_QUEUE__MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    let device = app.signed_up_and_logged_in("told01", "told1@vsee.com").await;
    let receipt = device.request_deletion("told1@vsee.com").await;
    app.wait_for_status(&receipt, "completed").await;

    app.wait_for_count(
        "SELECT COUNT(*) FROM processor_deliveries WHERE processor = 'billing' AND acknowledged_at IS NOT NULL",
        1,
        Duration::from_secs(20),
    )
    .await;
    app.wait_for_count(
        "SELECT COUNT(*) FROM processor_deliveries WHERE processor = 'analytics' AND dead_at IS NOT NULL",
        1,
        Duration::from_secs(20),
    )
    .await;

    // Three tries to billing, the same notice each time, each signed afresh and verifiable;
    // the subject only by billing's own pseudonym, and the receipt id.
    let request = app.request().await;
    let seen = billing.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let now = app.clock.now();
    let tolerance = chrono::Duration::minutes(5);
    let mut ids = Vec::new();
    for (headers, body) in &seen {
        let header = headers["erasure-signature"].to_str().unwrap();
        assert!(processors::verify_signature(
            BILLING_SECRET.as_bytes(),
            header,
            body,
            now,
            tolerance
        ));
        assert!(!processors::verify_signature(
            ANALYTICS_SECRET.as_bytes(),
            header,
            body,
            now,
            tolerance
        ));
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(!processors::verify_signature(
            BILLING_SECRET.as_bytes(),
            header,
            &tampered,
            now,
            tolerance
        ));
        let replayed = now + chrono::Duration::minutes(10);
        assert!(!processors::verify_signature(
            BILLING_SECRET.as_bytes(),
            header,
            body,
            replayed,
            tolerance
        ));
        let notice: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(notice["type"], "account.deleted");
        assert_eq!(notice["data"]["receipt_id"], receipt.as_str());
        assert_eq!(
            notice["data"]["subject"],
            app.state.keys.processor_pseudonym("billing", &request.subject)
        );
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("told"), "no identifier in clear: {text}");
        ids.push(notice["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "a retry sends the same notice id");
    let analytics_notice: Value = serde_json::from_slice(&analytics.seen.lock().unwrap()[0].1).unwrap();
    assert_ne!(
        analytics_notice["data"]["subject"],
        seen_subject(&seen),
        "two processors cannot join their records"
    );
    assert_eq!(
        analytics.seen.lock().unwrap().len(),
        3,
        "three attempts, then dead"
    );

    // The ledger records the acknowledgement, and the receipt proves it.
    assert_eq!(
        app.strings("SELECT event || '|' || actor_kind FROM ledger_entries ORDER BY seq")
            .await,
        [
            "account_deleted|account_holder",
            "processor_acknowledged|processor"
        ]
    );
    let key = app.state.log_signer.public();
    let r: Receipt = serde_json::from_value(
        app.device()
            .get_json(&format!("/api/v1/deletions/{receipt}/proof"))
            .await,
    )
    .unwrap();
    assert_eq!(r.processors.len(), 1);
    assert_eq!(r.processors[0].processor, "billing");
    r.verify(&key).unwrap();
    let mut forged = r.clone();
    forged.processors[0].processor = "analytics".into();
    assert!(
        forged.verify(&key).is_err(),
        "an acknowledgement cannot be claimed for another processor"
    );
    let mut forged = r.clone();
    forged.processors[0].acknowledged_at = "2020-01-01T00:00:00.000000Z".into();
    assert!(forged.verify(&key).is_err());

    // Dead deliveries are visible to agents and admins; how each processor answers, to auditors.
    let agent = staff_device(&app, "agent").await;
    let dead = agent.get_json("/api/v1/processors/deliveries?state=dead").await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead[0]["processor"], "analytics");
    assert_eq!(dead[0]["last_status"], 503);
    assert_eq!(dead[0]["attempts"], 3);
    let (code, page) = agent.get_page("/staff/tickets").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        page.contains("Processors not told of a deletion") && page.contains("analytics"),
        "{page}"
    );
    let (status, code) = error_code(
        agent
            .client
            .get(agent.url("/api/v1/processors/deliveries?state=lost"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_input"));
    let auditor = staff_device(&app, "auditor").await;
    let r = auditor
        .client
        .get(auditor.url("/api/v1/processors/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let standing = auditor.get_json("/api/v1/processors").await;
    let of = |name: &str| {
        standing
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["processor"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of("analytics")["never_acknowledged"], true);
    assert_eq!(of("billing")["never_acknowledged"], false);
    assert_eq!(of("billing")["acknowledged"], 1);
    let (code, page) = auditor.get_page("/staff/reports").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("never acknowledged"), "{page}");
    assert_eq!(app.verify_ledger().await.unwrap(), 2);
}

fn seen_subject(seen: &[(hyper::HeaderMap, Vec<u8>)]) -> Value {
    serde_json::from_slice::<Value>(&seen[0].1).unwrap()["data"]["subject"].clone()
}

crate::on_both_stacks!(processors_are_told_signed_retried_and_acknowledged_in_the_receipt);
