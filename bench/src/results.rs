//! What each section measured, per stack.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    Sqlite,
    Server,
}

impl StackKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Server => "postgres+redis",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct NoopRate {
    pub jobs: u64,
    pub secs: f64,
}

impl NoopRate {
    pub fn per_sec(&self) -> f64 {
        self.jobs as f64 / self.secs
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DeletionRun {
    pub accounts: usize,
    pub secs: f64,
}

impl DeletionRun {
    pub fn per_sec(&self) -> f64 {
        self.accounts as f64 / self.secs
    }
    pub fn secs_per_account(&self) -> f64 {
        self.secs / self.accounts as f64
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeSide {
    pub accounts: usize,
    pub rows: u64,
    pub secs: f64,
}

impl PurgeSide {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.secs
    }
    pub fn secs_per_account(&self) -> f64 {
        self.secs / self.accounts as f64
    }
}

#[derive(Debug, Clone)]
pub struct PurgeCompare {
    pub ours: PurgeSide,
    pub raw: PurgeSide,
    /// Where purge::run's statement time went, per account.
    pub top: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub samples: usize,
    pub p50: Duration,
    pub p99: Duration,
}

#[derive(Debug, Clone)]
pub struct LatencyCompare {
    pub ours: Latency,
    pub chain: Latency,
    /// Median of each step, for the notes.
    pub stages: String,
}

#[derive(Debug, Clone)]
pub struct BigRun {
    pub secs: f64,
    pub rows: u64,
    pub rss_growth: Option<u64>,
    pub longest: Duration,
    pub longest_sql: String,
    pub statements: u64,
}

#[derive(Debug, Clone)]
pub struct BigCompare {
    pub messages: u64,
    pub ours: BigRun,
    pub raw: BigRun,
}

/// (g): the same messages parsed by mail-parser alone, through the webhook, and piped.
#[derive(Debug, Clone)]
pub struct IntakeRun {
    pub messages: usize,
    pub parse_secs: f64,
    pub webhook_secs: f64,
    pub piped: usize,
    pub piped_secs: f64,
}

/// (h): p95 of the queue page, its API, and the bare SELECT of the same rows.
#[derive(Debug, Clone)]
pub struct QueuePageRun {
    pub tickets: usize,
    pub requests: usize,
    pub page: Duration,
    pub api: Duration,
    pub select: Duration,
}

/// (i): the audit ledger at scale.
#[derive(Debug, Clone)]
pub struct AuditRun {
    pub entries: usize,
    pub body_bytes: usize,
    pub raw_secs: f64,
    pub verify_secs: f64,
    pub export_secs: f64,
    pub export_rss: Option<u64>,
    pub requests: usize,
    pub proof: Duration,
    pub node_select: Duration,
    pub page: Duration,
    pub page_select: Duration,
}

#[derive(Debug, Default)]
pub struct StackResults {
    pub noop: Option<NoopRate>,
    pub noop_stock: Option<NoopRate>,
    pub deletions: Option<DeletionRun>,
    pub purge: Option<PurgeCompare>,
    pub latency: Option<LatencyCompare>,
    pub big: Option<BigCompare>,
    pub deletions_10x: Option<DeletionRun>,
    pub purge_10x: Option<PurgeCompare>,
    pub intake: Option<IntakeRun>,
    pub queue_page: Option<QueuePageRun>,
    pub audit: Option<AuditRun>,
    pub requests: Option<crate::requests::RequestsRun>,
    pub shredding: Option<crate::shredding::ShreddingRun>,
    pub pipeline: Option<crate::pipeline::PipelineRun>,
    pub http: Option<crate::http::HttpRun>,
    pub backlog: Option<crate::backlog::BacklogRun>,
    pub layouts: Option<Vec<crate::layouts::LayoutRun>>,
    pub errors: Vec<String>,
}

pub struct Row {
    pub stack: String,
    pub measure: String,
    pub value: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: String,
}

impl Row {
    /// A row whose ratio is printed to three places, with whether its target was met.
    pub fn ratio(
        stack: &str,
        measure: String,
        value: String,
        baseline: String,
        ratio: f64,
        target: &str,
        met: bool,
    ) -> Self {
        Self {
            stack: stack.to_owned(),
            measure,
            value,
            baseline,
            ratio: format!("{ratio:.3}x"),
            target: target.to_owned(),
            met: crate::table::yes_no(met),
        }
    }
}
