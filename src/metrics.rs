//! Prometheus metrics (the Prometheus project's `prometheus-client`), served by GET /metrics in
//! the OpenMetrics text format. One `Registry` per application, not a global one, so the tests
//! run many applications in one process. Counters and histograms are this process's (requests,
//! job durations); gauges that describe shared state (deletions by status, queue depth, dead
//! jobs, outbox lag) are read from the database and the queue at scrape time, so every
//! process reports the same truth.

use std::{sync::atomic::AtomicU64, time::Duration};

use erasure_jobs::{Backlog, JobKind};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Upper bounds (seconds) of the job-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The content type of what `render` returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route pattern, never the path: paths carry tokens, and one series per path would
    /// grow without bound.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    backend: &'static str,
    job: &'static str,
}

fn job_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    jobs: Family<JobLabels, Histogram, fn() -> Histogram>,
    deletions: Family<StatusLabels, Gauge>,
    queue_waiting: Family<QueueLabels, Gauge>,
    dead_jobs: Gauge,
    outbox_waiting: Gauge,
    outbox_lag: Gauge<f64, AtomicU64>,
    tickets: Family<StatusLabels, Gauge>,
    clock: Family<StatusLabels, Gauge>,
    clock_computed: Gauge,
}

/// What is read from the shared stores at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub deletions_by_status: Vec<(&'static str, u64)>,
    pub queue_backend: &'static str,
    pub queue_waiting: Backlog,
    pub dead_jobs: u64,
    pub outbox_waiting: u64,
    pub outbox_lag_secs: f64,
    /// Open tickets: all, past due, due within a week.
    pub tickets: Vec<(&'static str, u64)>,
    /// The daily job's latest reading, the same three, and when it was taken (Unix seconds).
    pub clock: Option<(Vec<(&'static str, u64)>, i64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("erasure");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern and status.",
            requests.clone(),
        );
        let jobs = Family::<JobLabels, Histogram, fn() -> Histogram>::new_with_constructor(job_histogram);
        registry.register(
            "job_duration_seconds",
            "Job run time by kind and outcome, in this process.",
            jobs.clone(),
        );
        let deletions = Family::<StatusLabels, Gauge>::default();
        registry.register("deletions", "Deletion requests by status.", deletions.clone());
        let queue_waiting = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_waiting_jobs",
            "Jobs queued and not yet taken by a worker.",
            queue_waiting.clone(),
        );
        let dead_jobs = Gauge::default();
        registry.register(
            "dead_jobs",
            "Jobs that failed their last attempt and were not retried.",
            dead_jobs.clone(),
        );
        let outbox_waiting = Gauge::default();
        registry.register(
            "outbox_waiting",
            "Outbox rows not yet relayed to the queue.",
            outbox_waiting.clone(),
        );
        let outbox_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_lag_seconds",
            "How long the oldest due outbox row has waited for the relay.",
            outbox_lag.clone(),
        );
        let tickets = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "open_tickets",
            "Open tickets: all of them, those past due, and those due within 7 days.",
            tickets.clone(),
        );
        let clock = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "ticket_clock",
            "The regulatory clock's daily reading: open tickets, past due, due within 7 days.",
            clock.clone(),
        );
        let clock_computed = Gauge::default();
        registry.register(
            "ticket_clock_computed_timestamp_seconds",
            "When the daily reading was taken (Unix time).",
            clock_computed.clone(),
        );
        Self {
            tickets,
            clock,
            clock_computed,
            registry,
            requests,
            jobs,
            deletions,
            queue_waiting,
            dead_jobs,
            outbox_waiting,
            outbox_lag,
        }
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    pub fn job_finished(&self, kind: JobKind, took: Duration, ok: bool) {
        let labels = JobLabels {
            job: kind.as_str(),
            outcome: if ok { "ok" } else { "error" },
        };
        self.jobs.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The registry as OpenMetrics text, with the shared gauges set from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        for (status, n) in &snapshot.deletions_by_status {
            self.deletions
                .get_or_create(&StatusLabels { status })
                .set(gauge_value(*n));
        }
        for &kind in JobKind::ALL {
            let labels = QueueLabels {
                backend: snapshot.queue_backend,
                job: kind.as_str(),
            };
            self.queue_waiting
                .get_or_create(&labels)
                .set(gauge_value(snapshot.queue_waiting.of(kind)));
        }
        self.dead_jobs.set(gauge_value(snapshot.dead_jobs));
        self.outbox_waiting.set(gauge_value(snapshot.outbox_waiting));
        self.outbox_lag.set(snapshot.outbox_lag_secs);
        for (status, n) in &snapshot.tickets {
            self.tickets
                .get_or_create(&StatusLabels { status })
                .set(gauge_value(*n));
        }
        if let Some((counts, computed_at)) = &snapshot.clock {
            for (status, n) in counts {
                self.clock
                    .get_or_create(&StatusLabels { status })
                    .set(gauge_value(*n));
            }
            self.clock_computed.set(*computed_at);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.job_finished(JobKind::Purge, Duration::from_millis(20), true);
        m.job_finished(JobKind::Purge, Duration::from_secs(3), true);
        m.request("GET", "/a\"b", 200);
        let text = m.render(&Snapshot::default());
        assert!(
            text.contains("erasure_job_duration_seconds_bucket{le=\"0.025\",job=\"purge\",outcome=\"ok\"} 1")
                || text.contains(
                    "erasure_job_duration_seconds_bucket{job=\"purge\",outcome=\"ok\",le=\"0.025\"} 1"
                ),
            "{text}"
        );
        assert!(
            text.contains("erasure_job_duration_seconds_count{job=\"purge\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("erasure_http_requests_total{method=\"GET\",route=\"/a\\\"b\",status=\"200\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn each_application_counts_on_its_own() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.request("GET", "/x", 200);
        assert!(a.render(&Snapshot::default()).contains("route=\"/x\""));
        assert!(!b.render(&Snapshot::default()).contains("route=\"/x\""));
    }
}
