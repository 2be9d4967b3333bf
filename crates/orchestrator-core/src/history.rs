//! What the last runs did, kept in the pipeline's cache directory
//! (`runs.json`): the daemon reads when each source last started, to know
//! whether a scheduled time was missed while it was down; metrics read each
//! job's last outcome, so a `--metrics-file` written by a run of one source
//! still shows the others.
//!
//! Losing it costs little: a missing or unreadable file is an empty history,
//! which at worst makes a catch-up run happen once more. So it is written
//! whole to a temporary file and renamed, and never fails a run.

use crate::report::{Outcome, RunReport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

const FILE: &str = "runs.json";

/// Runs of one process update the file one at a time (the daemon may run
/// two sources at once); another process racing it loses at most an update.
static WRITING: Mutex<()> = Mutex::new(());

/// Every source's last run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// By source name.
    pub sources: BTreeMap<String, SourceHistory>,
}

/// One source's last run and the last job into each of its sinks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceHistory {
    /// When its last run started, seconds since the epoch.
    pub last_start: i64,
    /// By sink name.
    pub jobs: BTreeMap<String, LastJob>,
}

/// A job's numbers, as metrics show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastJob {
    /// When it started, seconds since the epoch.
    pub started: i64,
    /// `ok`, `failed` or `cancelled`.
    pub outcome: Outcome,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Content bytes read from the source.
    pub bytes_read: u64,
    /// Files whose content was read.
    pub files_read: u64,
    /// Entries offered to the sink.
    pub entries: u64,
    /// Bytes of the stored set (0 when none was stored).
    pub bytes_stored: u64,
    /// When the last job that stored a set started (kept across failures).
    pub last_success: Option<i64>,
}

impl History {
    /// The history in `dir`, empty when there is none or it cannot be read.
    pub fn load(dir: &Path) -> History {
        std::fs::read(dir.join(FILE)).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// When `source` last started a run.
    pub fn last_start(&self, source: &str) -> Option<i64> {
        self.sources.get(source).map(|s| s.last_start)
    }

    /// Fold a run's report in.
    pub fn add(&mut self, report: &RunReport) {
        for job in &report.jobs {
            let source = self.sources.entry(job.source.clone()).or_default();
            source.last_start = source.last_start.max(report.time);
            let previous = source.jobs.get(&job.sink).and_then(|j| j.last_success);
            source.jobs.insert(
                job.sink.clone(),
                LastJob {
                    started: job.started,
                    outcome: job.outcome,
                    seconds: job.seconds,
                    bytes_read: job.bytes_read,
                    files_read: job.files_read,
                    entries: job.entries,
                    bytes_stored: job.set.as_ref().map_or(0, |s| s.size),
                    last_success: if job.succeeded() { Some(job.started) } else { previous },
                },
            );
        }
    }
}

/// Add `report` to the history in `dir`. Failures are logged, not returned:
/// the backup itself is what counts.
pub fn record(dir: &Path, report: &RunReport) {
    let _one_at_a_time = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut history = History::load(dir);
    history.add(report);
    if let Err(e) = save(dir, &history) {
        tracing::warn!("cannot record the run in {}: {e}", dir.join(FILE).display());
    }
}

fn save(dir: &Path, history: &History) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut file = tempfile::Builder::new().prefix(".runs-").tempfile_in(dir)?;
    file.write_all(&serde_json::to_vec_pretty(history).map_err(std::io::Error::other)?)?;
    file.as_file().sync_all()?;
    file.persist(dir.join(FILE)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{JobReport, REPORT_VERSION};

    fn report(time: i64, jobs: Vec<JobReport>) -> RunReport {
        RunReport {
            report_version: REPORT_VERSION,
            pipeline: "p".into(),
            run_id: "r".into(),
            time,
            ok: true,
            stopped: None,
            signal: None,
            error: None,
            jobs,
            notifications: Vec::new(),
        }
    }

    fn job(source: &str, sink: &str, started: i64, ok: bool) -> JobReport {
        JobReport {
            outcome: if ok { Outcome::Ok } else { Outcome::Failed },
            ok,
            bytes_read: 10,
            ..JobReport::new(source.into(), sink.into(), started)
        }
    }

    #[test]
    fn keeps_other_sources_and_the_last_success_across_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &report(100, vec![job("a", "s", 100, true), job("b", "s", 100, true)]));
        record(dir.path(), &report(200, vec![job("a", "s", 200, false)]));
        let h = History::load(dir.path());
        assert_eq!(h.last_start("a"), Some(200));
        assert_eq!(h.last_start("b"), Some(100));
        let a = &h.sources["a"].jobs["s"];
        assert_eq!((a.outcome, a.last_success), (Outcome::Failed, Some(100)));
    }

    #[test]
    fn a_torn_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{\"sources\": {\"a\"").unwrap();
        assert_eq!(History::load(dir.path()), History::default());
        record(dir.path(), &report(5, vec![job("a", "s", 5, true)]));
        assert_eq!(History::load(dir.path()).last_start("a"), Some(5));
    }
}
