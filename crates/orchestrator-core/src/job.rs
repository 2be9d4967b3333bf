//! One backup job: the entries of one source, in order, into one sink.
//!
//! The host drives both plugins: it pulls a batch of entries from the source,
//! offers each to the sink, and only when the sink wants a file's content
//! does it open that file and stream it across in chunks. An unchanged file
//! is never read; memory stays bounded by one batch and one chunk.

use crate::lock::{Owner, RunLock};
use crate::plan::Plan;
use crate::report::{JobReport, Outcome as JobOutcome, SetReport};
use crate::restore_dir::show;
use crate::stop::{Stop, StopReason};
use orchestrator_config::{PluginInstance, Sink};
use orchestrator_runtime::types::{
    BackupContext, BackupSet, ContentStatus, Entry, EntryKind, Outcome, PluginError, RunContext,
};
use orchestrator_runtime::{Backup, RuntimeError, Session, SinkInstance, SourceInstance};
use orchestrator_storage::Storage;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries asked of a source per call.
const ENTRY_BATCH: u32 = 512;
/// Bytes of content asked per call; large enough to amortise the crossing,
/// small enough to keep memory flat.
pub const CHUNK: u32 = 1 << 20;
/// How long a stopped job may take to wind down (the source releasing what
/// it holds) before it is cut off.
const WIND_DOWN: Duration = Duration::from_secs(60);

/// What one run of a job is called and when it happens.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Unique id of the run.
    pub run_id: String,
    /// Its time, seconds since the epoch.
    pub time: i64,
    /// `run --full`.
    pub force_full: bool,
}

/// Live counters of a job, for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Entries offered to the sink.
    pub entries: AtomicU64,
    /// Files whose content was read.
    pub files_read: AtomicU64,
    /// Content bytes read.
    pub bytes: AtomicU64,
}

/// Which side of a job failed, so the message can say so.
enum Side {
    Source(RuntimeError),
    Sink(RuntimeError),
    Host(String),
    Stopped(StopReason),
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Source(e @ RuntimeError::Plugin(_)) => write!(f, "the source failed: {e}"),
            Side::Sink(e @ RuntimeError::Plugin(_)) => write!(f, "the sink failed: {e}"),
            Side::Source(e) | Side::Sink(e) => write!(f, "{e}"),
            Side::Host(m) => f.write_str(m),
            Side::Stopped(reason) => {
                write!(f, "{reason}: no new backup set was stored (the next run removes what this one uploaded)")
            }
        }
    }
}

/// Path order of entries: component-wise, bytewise (duplicity's index order).
pub(crate) fn index_less(a: &[u8], b: &[u8]) -> bool {
    if a.is_empty() {
        return !b.is_empty();
    }
    if b.is_empty() {
        return false;
    }
    a.split(|&c| c == b'/').lt(b.split(|&c| c == b'/'))
}

/// Refuse entries a sink could be harmed by: paths that leave the source's
/// root, entries out of order, and a first entry that is not the root.
fn check_entry(entry: &Entry, previous: Option<&[u8]>) -> Result<(), String> {
    crate::restore_dir::components(&entry.path).map_err(|e| format!("the source yielded a bad path: {e}"))?;
    match previous {
        None if !entry.path.is_empty() || entry.meta.kind != EntryKind::Directory => {
            Err(format!("the source's first entry must be its root directory, not {:?}", show(&entry.path)))
        }
        Some(prev) if !index_less(prev, &entry.path) => {
            Err(format!("the source yielded {:?} after {:?}, out of order", show(&entry.path), show(prev)))
        }
        _ => Ok(()),
    }
}

struct Counters<'a> {
    progress: &'a Progress,
    unreadable: u64,
}

async fn copy_content(
    src: &mut SourceInstance,
    session: &Session,
    snk: &mut SinkInstance,
    backup: &Backup,
    entry: &Entry,
    counters: &mut Counters<'_>,
    stop: &Stop,
) -> Result<(), Side> {
    let unreadable = |e: &RuntimeError, src: &SourceInstance| {
        let reason = format!("cannot read {}: {e}", show(&entry.path));
        tracing::warn!(plugin = src.log().label(), "{reason}");
        reason
    };
    let content = match src.open_content(session, &entry.path).await {
        Ok(c) => c,
        Err(e @ RuntimeError::Plugin(_)) => {
            counters.unreadable += 1;
            let reason = unreadable(&e, src);
            return snk.end_entry(backup, &ContentStatus::Unreadable(reason)).await.map_err(Side::Sink);
        }
        Err(e) => return Err(Side::Source(e)),
    };
    counters.progress.files_read.fetch_add(1, Ordering::Relaxed);
    let status = loop {
        stop.check().map_err(Side::Stopped)?;
        match src.read(&content, CHUNK).await {
            Ok(chunk) if chunk.is_empty() => break ContentStatus::Complete,
            Ok(chunk) => {
                counters.progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                snk.write(backup, &chunk).await.map_err(Side::Sink)?;
            }
            Err(e @ RuntimeError::Plugin(_)) => {
                counters.unreadable += 1;
                break ContentStatus::Unreadable(unreadable(&e, src));
            }
            Err(e) => return Err(Side::Source(e)),
        }
    };
    src.close_content(content).await.map_err(Side::Source)?;
    snk.end_entry(backup, &status).await.map_err(Side::Sink)
}

async fn drive(
    src: &mut SourceInstance,
    session: &Session,
    snk: &mut SinkInstance,
    sink_config: &str,
    context: &BackupContext,
    counters: &mut Counters<'_>,
    stop: &Stop,
) -> Result<BackupSet, Side> {
    stop.check().map_err(Side::Stopped)?;
    let backup = snk.begin_backup(sink_config, context).await.map_err(Side::Sink)?;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        stop.check().map_err(Side::Stopped)?;
        let batch = src.next(session, ENTRY_BATCH).await.map_err(Side::Source)?;
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            check_entry(&entry, previous.as_deref()).map_err(Side::Host)?;
            counters.progress.entries.fetch_add(1, Ordering::Relaxed);
            stop.check().map_err(Side::Stopped)?;
            let wants = snk.add(&backup, &entry).await.map_err(Side::Sink)?;
            if wants && entry.meta.kind == EntryKind::File {
                copy_content(src, session, snk, &backup, &entry, counters, stop).await?;
            }
            previous = Some(entry.path);
        }
    }
    if previous.is_none() {
        return Err(Side::Host("the source yielded no entries, not even its root".into()));
    }
    // The last moment to stop: `finish` commits the set.
    stop.check().map_err(Side::Stopped)?;
    snk.finish(&backup).await.map_err(Side::Sink)
}

/// Run one job to its end and describe how it went. Never panics on plugin
/// misbehaviour: every failure is in the report. `stop` is the run's: the
/// job also stops at its own time limit and when its lock is lost.
pub async fn run_job(
    plan: Arc<Plan>,
    source: PluginInstance,
    sink: Sink,
    run: RunInfo,
    progress: Arc<Progress>,
    stop: &Stop,
) -> JobReport {
    let started = Instant::now();
    let mut report = JobReport::new(source.name.clone(), sink.instance.name.clone(), run.time);
    let (stop, relay) = stop.child();
    let timeout = [source.limits.timeout, sink.instance.limits.timeout].into_iter().flatten().min();
    let timer = timeout.map(|t| {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(t).await;
            stop.request(StopReason::TimeLimit(t));
        })
    });
    // Stopping is cooperative; a job stuck in a call past its wind-down is cut off.
    let cut_off = async {
        let reason = stop.requested().await;
        tokio::time::sleep(WIND_DOWN).await;
        format!("{reason}, and the job did not stop within {}s; it was cut off", WIND_DOWN.as_secs())
    };
    let result = tokio::select! {
        result = job(&plan, &source, &sink, &run, &progress, &mut report, &stop) => result,
        message = cut_off => Err(message),
    };
    relay.abort();
    if let Some(timer) = timer {
        timer.abort();
    }
    report.cancelled = stop.reason().is_some();
    if let Err(e) = result {
        report.error = Some(e);
    }
    report.outcome = match (report.cancelled, report.succeeded()) {
        (true, _) => JobOutcome::Cancelled,
        (false, true) => JobOutcome::Ok,
        (false, false) => JobOutcome::Failed,
    };
    report.entries = progress.entries.load(Ordering::Relaxed);
    report.files_read = progress.files_read.load(Ordering::Relaxed);
    report.bytes_read = progress.bytes.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Hold the run lock of the source's place in the target for the whole job
/// (sinks without a target store nothing and need none): a job that cannot
/// take it fails and the others go on; a job that loses it stops.
async fn job(
    plan: &Plan,
    source: &PluginInstance,
    sink: &Sink,
    run: &RunInfo,
    progress: &Progress,
    report: &mut JobReport,
    stop: &Stop,
) -> Result<(), String> {
    let Some(target) = plan.storage_of(sink) else {
        return locked_job(plan, source, sink, run, progress, report, None, stop).await;
    };
    let owner =
        Owner { run_id: run.run_id.clone(), pipeline: plan.pipeline.name.clone(), sink: sink.instance.name.clone() };
    let lock = RunLock::acquire(target.clone(), &source.name, &owner).map_err(|e| e.to_string())?;
    sweep(&*target, &source.name);
    let result = {
        let work = locked_job(plan, source, sink, run, progress, report, Some(&lock), stop);
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            reason = lock.lost() => {
                stop.request(StopReason::LockLost(reason));
                work.await
            }
        }
    };
    if let Err(e) = lock.release() {
        tracing::warn!(source = %source.name, sink = %sink.instance.name, "{e}");
    }
    result
}

/// Remove the temporary objects of interrupted runs; under the lock no one
/// else is writing them.
fn sweep(target: &dyn Storage, place: &str) {
    match target.remove_debris_checked(place) {
        Ok(0) => {}
        Ok(n) => tracing::info!(source = %place, "removed {n} temporary object(s) left by an interrupted run"),
        Err(e) => tracing::warn!(source = %place, "cannot remove temporary objects of interrupted runs: {e}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn locked_job(
    plan: &Plan,
    source: &PluginInstance,
    sink: &Sink,
    run: &RunInfo,
    progress: &Progress,
    report: &mut JobReport,
    lock: Option<&RunLock>,
    stop: &Stop,
) -> Result<(), String> {
    let mut src = plan.start_source(source, &[]).await.map_err(|e| e.to_string())?;
    let mut snk = plan.start_sink(sink, &source.name).await.map_err(|e| e.to_string())?;
    stop.check().map_err(|r| Side::Stopped(r).to_string())?;
    let source_config = source.config.to_string();
    let sink_config = sink.instance.config.to_string();
    let run_context = RunContext { source_name: source.name.clone(), run_id: run.run_id.clone(), time: run.time };
    let session = src.open(&source_config, &run_context).await.map_err(|e| match e {
        RuntimeError::Plugin(PluginError::Config(m)) => plan.config_error(source, &m),
        e => Side::Source(e).to_string(),
    })?;
    let context = BackupContext {
        source_name: source.name.clone(),
        run_id: run.run_id.clone(),
        time: run.time,
        force_full: run.force_full,
    };
    let mut counters = Counters { progress, unreadable: 0 };
    // Starting the plugins took a while: make sure the lock is still ours
    // before the sink writes or removes anything.
    let result = match lock.map_or(Ok(()), RunLock::check) {
        Ok(()) => drive(&mut src, &session, &mut snk, &sink_config, &context, &mut counters, stop).await,
        Err(e) => Err(Side::Host(e.to_string())),
    };
    report.unreadable = counters.unreadable;
    let outcome = match &result {
        Ok(_) => Outcome::Success,
        Err(Side::Stopped(_)) => Outcome::Cancelled,
        Err(_) => Outcome::Failure,
    };
    // The source releases what it holds whatever happened; a failure here is
    // loud, because it can leave a snapshot behind on the source.
    let released = src.finish(&session, outcome).await;
    let _ = src.close_session(session).await;
    report.warnings = src.log().warnings() + snk.log().warnings();
    let set = result.map_err(|e| match &released {
        Err(release) => format!("{e}; and the source could not release what it holds: {release}"),
        Ok(()) => e.to_string(),
    })?;
    report.set = Some(SetReport::from(&set));
    report.ok = true;
    if let Err(e) = released {
        tracing::error!(source = %source.name, "the backup was stored, but the source could not release what it holds: {e}");
        report.ok = false;
        return Err(format!("the backup was stored, but the source could not release what it holds: {e}"));
    }
    // Retention removes whole chains: only while the lock is still ours,
    // and not in a run that is being stopped.
    if let Some(reason) = stop.reason() {
        tracing::warn!(sink = %sink.instance.name, "retention skipped (the new backup is stored): {reason}");
        report.warnings += 1;
        return Ok(());
    }
    if let Some(Err(e)) = lock.map(RunLock::check) {
        tracing::warn!(sink = %sink.instance.name, "retention skipped (the new backup is stored): {e}");
        report.warnings += 1;
        return Ok(());
    }
    match snk.prune(&sink_config, &source.name).await {
        Ok(removed) => report.pruned = removed,
        Err(e) => {
            tracing::warn!(sink = %sink.instance.name, "retention failed (the new backup is stored): {e}");
            report.warnings += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_order_is_component_wise() {
        assert!(index_less(b"", b"a"));
        assert!(index_less(b"sub", b"sub/deeper"));
        assert!(index_less(b"sub/deeper", b"sub-x"));
        assert!(index_less(b"a", b"b"));
        assert!(!index_less(b"b", b"b"));
        assert!(!index_less(b"sub-x", b"sub/z"));
    }
}
