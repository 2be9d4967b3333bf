//! What runs and restores report: plain serde data that the CLI renders as
//! text or JSON and that schedulers, notifications and metrics consume.
//! `docs/reports.md` documents the JSON; [`REPORT_VERSION`] changes when a
//! field changes meaning or goes away (new fields do not change it).

use orchestrator_runtime::types::{BackupSet, SetKind};
use serde::{Deserialize, Serialize};

/// The version of the JSON reports' shape.
pub const REPORT_VERSION: u32 = 1;

/// Bytes in binary units with one decimal (`3.0 MiB`), for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// How one `run` went.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id (sorts by time).
    pub run_id: String,
    /// When the run started, seconds since the epoch.
    pub time: i64,
    /// Every job succeeded.
    pub ok: bool,
    /// Why the run was stopped before its end, if it was.
    pub stopped: Option<String>,
    /// The signal that stopped it (2 for SIGINT, 15 for SIGTERM).
    pub signal: Option<i32>,
    /// Why the run could not start at all (no job ran): a plugin that does
    /// not load, a target that cannot be opened, a secret that is missing.
    pub error: Option<String>,
    /// One report per (source, sink) pair, in the pipeline's order.
    pub jobs: Vec<JobReport>,
    /// How each notification of the run was delivered.
    pub notifications: Vec<NotificationReport>,
}

/// How one notification was delivered. A failed one never fails the run.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationReport {
    /// The `[notify.NAME]` table.
    pub notifier: String,
    /// `start`, `success` or `failure`.
    pub event: &'static str,
    /// Why it could not be delivered.
    pub error: Option<String>,
}

impl RunReport {
    /// The report of a run that could not start: `error` says why.
    pub fn not_started(pipeline: &str, time: i64, error: String) -> RunReport {
        RunReport {
            report_version: REPORT_VERSION,
            pipeline: pipeline.to_string(),
            run_id: run_id(),
            time,
            ok: false,
            stopped: None,
            signal: None,
            error: Some(error),
            jobs: Vec::new(),
            notifications: Vec::new(),
        }
    }

    /// How many jobs failed.
    pub fn failed(&self) -> usize {
        self.jobs.iter().filter(|j| !j.succeeded()).count()
    }
}

/// A run id that sorts by time and does not repeat: the time in hex and the pid.
pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

/// How a job ended: `ok`, `failed` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The backup was stored and everything after it worked.
    Ok,
    /// Something failed (see `error`).
    Failed,
    /// Stopped by a signal, its time limit or a lost lock.
    Cancelled,
}

/// How one job (one source into one sink) went.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// `ok`, `failed` or `cancelled`.
    pub outcome: Outcome,
    /// Whether the backup was stored.
    pub ok: bool,
    /// Why not, or what went wrong after storing it.
    pub error: Option<String>,
    /// Entries offered to the sink.
    pub entries: u64,
    /// Files whose content was read.
    pub files_read: u64,
    /// Content bytes read.
    pub bytes_read: u64,
    /// Files that could not be read (each also a warning).
    pub unreadable: u64,
    /// Warnings logged by the plugins and the host.
    pub warnings: u64,
    /// The stored set, as the sink describes it.
    pub set: Option<SetReport>,
    /// Objects removed by retention.
    pub pruned: Vec<String>,
    /// When the job started, seconds since the epoch.
    pub started: i64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Stopped before its end by a signal, its time limit or a lost lock.
    pub cancelled: bool,
}

impl JobReport {
    /// The report of a job that has not done anything yet.
    pub fn new(source: String, sink: String, started: i64) -> JobReport {
        JobReport {
            source,
            sink,
            outcome: Outcome::Failed,
            ok: false,
            error: None,
            entries: 0,
            files_read: 0,
            bytes_read: 0,
            unreadable: 0,
            warnings: 0,
            set: None,
            pruned: Vec::new(),
            started,
            seconds: 0.0,
            cancelled: false,
        }
    }

    /// The backup was stored and nothing failed after it.
    pub fn succeeded(&self) -> bool {
        self.ok && self.error.is_none()
    }
}

/// A stored set, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// `full` or `incremental`.
    pub kind: &'static str,
    /// Seconds since the epoch.
    pub time: i64,
    /// Data objects.
    pub volumes: u32,
    /// Stored bytes.
    pub size: u64,
    /// Changed entries, if known.
    pub changed_entries: Option<u64>,
}

/// `full` or `incremental`.
pub fn set_kind(k: SetKind) -> &'static str {
    match k {
        SetKind::Full => "full",
        SetKind::Incremental => "incremental",
    }
}

impl From<&BackupSet> for SetReport {
    fn from(s: &BackupSet) -> Self {
        SetReport {
            kind: set_kind(s.kind),
            time: s.time,
            volumes: s.volumes,
            size: s.size,
            changed_entries: s.changed_entries,
        }
    }
}

/// How one `restore` went.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The source restored.
    pub source: String,
    /// The sink it was read from.
    pub sink: String,
    /// The directory or URL restored into.
    pub target: String,
    /// Entries restored or attempted.
    pub entries: u64,
    /// Files whose content was written.
    pub files: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Entries that could not be restored, each with why; the restore went
    /// on past them (unless `--fail-fast`).
    pub failures: Vec<EntryFailure>,
    /// Entries left out on purpose (a device without root, a socket).
    pub skipped: Vec<String>,
    /// What the target's writer says it did (`restore --to URL`).
    pub summary: Option<String>,
    /// Stopped at the first failure (`--fail-fast`) before the end.
    pub stopped_early: bool,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl RestoreReport {
    /// Every entry was restored.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.stopped_early
    }
}

/// An entry that could not be restored.
#[derive(Debug, Clone, Serialize)]
pub struct EntryFailure {
    /// Its path in the backup (as shown to people: lossy UTF-8).
    pub path: String,
    /// Why.
    pub error: String,
}

/// What `status` found for one (source, sink) pair.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// Chains, oldest first; absent when the sink could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chains: Option<Vec<ChainReport>>,
    /// The sink's notes (leftovers, orphans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    /// Why the sink could not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the newest stored set was taken, seconds since the epoch.
    pub newest: Option<i64>,
    /// With `status --max-age`: the newest set is older than that, or there
    /// is none (also when the sink could not be asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_old: Option<bool>,
}

impl StatusReport {
    /// Judge the newest set against `max_age` at `now`.
    pub fn check_age(&mut self, max_age: std::time::Duration, now: i64) {
        let limit = now.saturating_sub(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        self.too_old = Some(self.newest.is_none_or(|t| t < limit));
    }
}

/// One chain of sets.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// Its sets, oldest first.
    pub sets: Vec<SetReport>,
}

/// What `prune` did (or would do) for one (source, sink) pair.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// Nothing was removed: `removed` is what would be.
    pub dry_run: bool,
    /// Objects removed (or that would be), oldest chain first; absent when
    /// the sink could not prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<String>>,
    /// Why it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `verify` found for one (source, sink) pair.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// The archive check: objects and entries checked, problems found (in
    /// JSON, `{"error": …}` when the sink could not check).
    #[serde(serialize_with = "value_or_error")]
    pub archive: Result<ArchiveCheck, String>,
    /// The comparison with the live source, when asked for (`null` when
    /// not; `{"error": …}` when it could not be done).
    #[serde(serialize_with = "optional_value_or_error")]
    pub compare: Option<Result<Comparison, String>>,
}

impl VerifyReport {
    /// No problem, no difference, no error.
    pub fn ok(&self) -> bool {
        matches!(&self.archive, Ok(a) if a.problems.is_empty())
            && self.compare.as_ref().is_none_or(|c| matches!(c, Ok(c) if c.differences.is_empty()))
    }
}

/// What `verify --compare` found: the newest backup against the live source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    /// Entries compared (present on both sides).
    pub compared: u64,
    /// One sentence per difference.
    pub differences: Vec<String>,
}

/// The sink's check of its stored archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveCheck {
    /// Objects whose hash was checked.
    pub objects_checked: u64,
    /// Entries read back.
    pub entries_checked: u64,
    /// One sentence per problem.
    pub problems: Vec<String>,
}

/// `Ok(v)` as `v`, `Err(e)` as `{"error": e}`: one shape a program can test
/// with one key.
fn value_or_error<T: Serialize, S: serde::Serializer>(
    value: &Result<T, String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a str,
    }
    match value {
        Ok(v) => v.serialize(serializer),
        Err(e) => Failed { error: e }.serialize(serializer),
    }
}

fn optional_value_or_error<T: Serialize, S: serde::Serializer>(
    value: &Option<Result<T, String>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        None => serializer.serialize_none(),
        Some(v) => value_or_error(v, serializer),
    }
}
