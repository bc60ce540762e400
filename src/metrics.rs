//! Prometheus metrics, rendered by GET /metrics. Counters kept in the process (requests, job
//! durations) are per application, not global, so the tests can run many in one process.
//! Gauges that describe shared state (deletions by status, queue depth, dead jobs, outbox
//! lag) are read from the database and the queue at scrape time, so every process reports the
//! same truth.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex, time::Duration};

use erasure_jobs::{Backlog, JobKind};

/// Upper bounds (seconds) of the job-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route pattern, status) → count
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (job kind, outcome) → durations
    jobs: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
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
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((method.to_owned(), route.to_owned(), status))
                .or_insert(0) += 1;
        }
    }

    pub fn job_finished(&self, kind: JobKind, took: Duration, ok: bool) {
        if let Ok(mut map) = self.jobs.lock() {
            map.entry((kind.as_str(), if ok { "ok" } else { "error" }))
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        let jobs = self.jobs.lock().map(|m| m.clone()).unwrap_or_default();

        header(
            &mut out,
            "erasure_http_requests_total",
            "counter",
            "HTTP requests by route pattern and status.",
        );
        for ((method, route, status), n) in &requests {
            let _ = writeln!(
                out,
                "erasure_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }

        header(
            &mut out,
            "erasure_deletions",
            "gauge",
            "Deletion requests by status.",
        );
        for (status, n) in &snapshot.deletions_by_status {
            let _ = writeln!(out, "erasure_deletions{{status=\"{status}\"}} {n}");
        }

        header(
            &mut out,
            "erasure_queue_waiting_jobs",
            "gauge",
            "Jobs queued and not yet taken by a worker.",
        );
        for kind in JobKind::ALL {
            let _ = writeln!(
                out,
                "erasure_queue_waiting_jobs{{backend=\"{}\",job=\"{}\"}} {}",
                snapshot.queue_backend,
                kind.as_str(),
                snapshot.queue_waiting.of(kind)
            );
        }

        header(
            &mut out,
            "erasure_dead_jobs",
            "gauge",
            "Jobs that failed their last attempt and were not retried.",
        );
        let _ = writeln!(out, "erasure_dead_jobs {}", snapshot.dead_jobs);

        header(
            &mut out,
            "erasure_outbox_waiting",
            "gauge",
            "Outbox rows not yet relayed to the queue.",
        );
        let _ = writeln!(out, "erasure_outbox_waiting {}", snapshot.outbox_waiting);
        header(
            &mut out,
            "erasure_outbox_lag_seconds",
            "gauge",
            "Age of the oldest outbox row not yet relayed.",
        );
        let _ = writeln!(out, "erasure_outbox_lag_seconds {:.3}", snapshot.outbox_lag_secs);

        header(
            &mut out,
            "erasure_job_duration_seconds",
            "histogram",
            "Job run time by kind and outcome, in this process.",
        );
        for ((kind, outcome), h) in &jobs {
            let labels = format!("job=\"{kind}\",outcome=\"{outcome}\"");
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "erasure_job_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "erasure_job_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "erasure_job_duration_seconds_sum{{{labels}}} {:.6}", h.sum);
            let _ = writeln!(out, "erasure_job_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
            text.contains("erasure_job_duration_seconds_bucket{job=\"purge\",outcome=\"ok\",le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("erasure_job_duration_seconds_bucket{job=\"purge\",outcome=\"ok\",le=\"5\"} 2"),
            "{text}"
        );
        assert!(text.contains("erasure_job_duration_seconds_count{job=\"purge\",outcome=\"ok\"} 2"));
        assert!(text.contains("route=\"/a\\\"b\",status=\"200\"} 1"), "{text}");
    }
}
