//! Backup jobs: the entries of one source, in order, into each of its sinks
//! (a job is one source into one sink), the source read once for them all.
//!
//! The host drives the plugins: it pulls a batch of entries from the source,
//! offers each to every sink, and only when a sink wants a file's content
//! does it open that file and stream it, chunk by chunk, to the sinks that
//! want it. An unchanged file is never read; memory stays bounded by one
//! batch and one chunk, whatever the number of sinks. A sink that fails,
//! runs past its time limit or loses its lock is cut off and reported; the
//! source goes on for the others. A sink stuck in a call is bounded by its
//! `call_timeout`, and its storage by the storage's own timeouts.

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

/// One sink's share of a source's run: its instance, lock and report. A
/// sink that fails or stops is cut off (`failure`) and the source goes on
/// for the others.
struct SinkJob {
    sink: Sink,
    progress: Arc<Progress>,
    report: JobReport,
    /// The run's stop, plus this sink's time limit and lost lock.
    stop: Stop,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    lock: Option<RunLock>,
    instance: Option<SinkInstance>,
    config: String,
    backup: Option<Backup>,
    /// Wants the content of the entry being offered.
    wants: bool,
    /// Why it was cut off.
    failure: Option<String>,
    set: Option<BackupSet>,
}

impl SinkJob {
    fn new(sink: Sink, progress: Arc<Progress>, source: &str, run: &RunInfo, stop: &Stop) -> SinkJob {
        let (stop, relay) = stop.child();
        let tasks = [Some(relay), stop.after(sink.instance.limits.timeout)].into_iter().flatten().collect();
        let report = JobReport::new(source.to_string(), sink.instance.name.clone(), run.time);
        let config = sink.instance.config.to_string();
        SinkJob {
            sink,
            progress,
            report,
            stop,
            tasks,
            lock: None,
            instance: None,
            config,
            backup: None,
            wants: false,
            failure: None,
            set: None,
        }
    }

    fn name(&self) -> &str {
        &self.sink.instance.name
    }

    /// Still fed: not failed, and not stopped (a stop cuts it off now).
    fn live(&mut self) -> bool {
        if self.failure.is_none()
            && let Err(reason) = self.stop.check()
        {
            self.cut_off(Side::Stopped(reason));
        }
        self.failure.is_none()
    }

    fn cut_off(&mut self, why: Side) {
        if self.failure.is_none() {
            let why = why.to_string();
            tracing::warn!(sink = %self.sink.instance.name, "cut off from the source: {why}");
            self.failure = Some(why);
        }
        self.backup = None;
        self.wants = false;
    }

    /// Take the lock of the source's place in the target (sinks without a
    /// target store nothing and need none); losing it stops this sink.
    fn lock(&mut self, plan: &Plan, source: &str, run: &RunInfo) {
        let Some(target) = plan.storage_of(&self.sink) else { return };
        let owner =
            Owner { run_id: run.run_id.clone(), pipeline: plan.pipeline.name.clone(), sink: self.name().to_string() };
        match RunLock::acquire(target.clone(), source, &owner) {
            Ok(lock) => {
                let (lost, stop) = (lock.lost(), self.stop.clone());
                self.tasks.push(tokio::spawn(async move { stop.request(StopReason::LockLost(lost.await)) }));
                self.lock = Some(lock);
                sweep(&*target, source);
            }
            Err(e) => self.cut_off(Side::Host(e.to_string())),
        }
    }

    /// Before the sink writes or removes anything: the lock must still be
    /// ours (starting the plugins took a while).
    fn lock_held(&mut self) -> bool {
        if let Some(Err(e)) = self.lock.as_ref().map(RunLock::check) {
            self.cut_off(Side::Host(e.to_string()));
        }
        self.live()
    }

    /// The started instance and its backup in progress (only while live).
    fn working(&mut self) -> (&mut SinkInstance, &Backup) {
        (self.instance.as_mut().expect("started"), self.backup.as_ref().expect("begun"))
    }

    /// Offer `entry`; remember whether the sink wants its content.
    async fn add(&mut self, entry: &Entry) {
        if !self.live() {
            return;
        }
        self.progress.entries.fetch_add(1, Ordering::Relaxed);
        let (instance, backup) = self.working();
        match instance.add(backup, entry).await {
            Ok(wants) => self.wants = wants && entry.meta.kind == EntryKind::File,
            Err(e) => self.cut_off(Side::Sink(e)),
        }
    }

    async fn write(&mut self, chunk: &[u8]) {
        if !self.wants || !self.live() {
            return;
        }
        self.progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let (instance, backup) = self.working();
        if let Err(e) = instance.write(backup, chunk).await {
            self.cut_off(Side::Sink(e));
        }
    }

    async fn end_entry(&mut self, status: &ContentStatus) {
        if !self.wants || !self.live() {
            return;
        }
        if matches!(status, ContentStatus::Unreadable(_)) {
            self.report.unreadable += 1;
        }
        let (instance, backup) = self.working();
        if let Err(e) = instance.end_entry(backup, status).await {
            self.cut_off(Side::Sink(e));
        }
    }

    /// Retention removes whole chains: only while the lock is still ours,
    /// and not in a run that is being stopped.
    async fn prune(&mut self, source: &str) {
        let skipped = match (self.stop.reason(), self.lock.as_ref().map(RunLock::check)) {
            (Some(reason), _) => Some(reason.to_string()),
            (None, Some(Err(e))) => Some(e.to_string()),
            _ => None,
        };
        if let Some(why) = skipped {
            tracing::warn!(sink = %self.sink.instance.name, "retention skipped (the new backup is stored): {why}");
            self.report.warnings += 1;
            return;
        }
        let Some(instance) = self.instance.as_mut() else { return };
        match instance.prune(&self.config, source).await {
            Ok(removed) => self.report.pruned = removed,
            Err(e) => {
                tracing::warn!(sink = %self.sink.instance.name, "retention failed (the new backup is stored): {e}");
                self.report.warnings += 1;
            }
        }
    }

    /// The job's report, once the source's run is over (or was cut off
    /// with `run_error`).
    fn into_report(mut self, run_error: Option<&str>, seconds: f64) -> JobReport {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(lock) = self.lock.take()
            && let Err(e) = lock.release()
        {
            tracing::warn!(source = %self.report.source, sink = %self.sink.instance.name, "{e}");
        }
        let mut report = self.report;
        if let Some(instance) = &self.instance {
            report.warnings += instance.log().warnings();
        }
        report.cancelled = self.stop.reason().is_some();
        match (&self.set, self.failure, run_error) {
            (Some(set), _, _) => {
                report.set = Some(SetReport::from(set));
                report.ok = report.error.is_none();
            }
            (None, Some(failure), _) => report.error = Some(failure),
            (None, None, Some(e)) => report.error = Some(e.to_string()),
            (None, None, None) => report.error = Some("the job ended without storing a backup".into()),
        }
        report.outcome = match (report.cancelled, report.succeeded()) {
            (true, _) => JobOutcome::Cancelled,
            (false, true) => JobOutcome::Ok,
            (false, false) => JobOutcome::Failed,
        };
        report.entries = self.progress.entries.load(Ordering::Relaxed);
        report.files_read = self.progress.files_read.load(Ordering::Relaxed);
        report.bytes_read = self.progress.bytes.load(Ordering::Relaxed);
        report.seconds = seconds;
        report
    }
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

/// Read one file's content once and stream it to every sink that wants it.
async fn copy_content(
    src: &mut SourceInstance,
    session: &Session,
    sinks: &mut [SinkJob],
    entry: &Entry,
    stop: &Stop,
) -> Result<(), Side> {
    let unreadable = |e: &RuntimeError, src: &SourceInstance| {
        let reason = format!("cannot read {}: {e}", show(&entry.path));
        tracing::warn!(plugin = src.log().label(), "{reason}");
        ContentStatus::Unreadable(reason)
    };
    let content = match src.open_content(session, &entry.path).await {
        Ok(c) => c,
        Err(e @ RuntimeError::Plugin(_)) => {
            let status = unreadable(&e, src);
            for sink in sinks.iter_mut() {
                sink.end_entry(&status).await;
            }
            return Ok(());
        }
        Err(e) => return Err(Side::Source(e)),
    };
    for sink in sinks.iter_mut().filter(|s| s.wants) {
        sink.progress.files_read.fetch_add(1, Ordering::Relaxed);
    }
    let status = loop {
        stop.check().map_err(Side::Stopped)?;
        if !sinks.iter_mut().any(|s| s.wants && s.live()) {
            break ContentStatus::Complete; // no one left to send it to
        }
        match src.read(&content, CHUNK).await {
            Ok(chunk) if chunk.is_empty() => break ContentStatus::Complete,
            Ok(chunk) => {
                for sink in sinks.iter_mut() {
                    sink.write(&chunk).await;
                }
            }
            Err(e @ RuntimeError::Plugin(_)) => break unreadable(&e, src),
            Err(e) => return Err(Side::Source(e)),
        }
    };
    src.close_content(content).await.map_err(Side::Source)?;
    for sink in sinks.iter_mut() {
        sink.end_entry(&status).await;
    }
    Ok(())
}

/// The source's entries, in order, to every sink still fed; each sink's
/// set is finished at the end.
async fn drive(src: &mut SourceInstance, session: &Session, sinks: &mut [SinkJob], stop: &Stop) -> Result<(), Side> {
    let mut previous: Option<Vec<u8>> = None;
    loop {
        stop.check().map_err(Side::Stopped)?;
        if !sinks.iter_mut().any(SinkJob::live) {
            return Err(Side::Host("every sink failed".into()));
        }
        let batch = src.next(session, ENTRY_BATCH).await.map_err(Side::Source)?;
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            check_entry(&entry, previous.as_deref()).map_err(Side::Host)?;
            stop.check().map_err(Side::Stopped)?;
            for sink in sinks.iter_mut() {
                sink.add(&entry).await;
            }
            if sinks.iter().any(|s| s.wants) {
                copy_content(src, session, sinks, &entry, stop).await?;
            }
            previous = Some(entry.path);
        }
    }
    if previous.is_none() {
        return Err(Side::Host("the source yielded no entries, not even its root".into()));
    }
    // The last moment to stop: `finish` commits the set.
    stop.check().map_err(Side::Stopped)?;
    for sink in sinks.iter_mut() {
        if !sink.live() {
            continue;
        }
        let (instance, backup) = (sink.instance.as_mut().expect("started"), sink.backup.take().expect("begun"));
        match instance.finish(&backup).await {
            Ok(set) => sink.set = Some(set),
            Err(e) => sink.cut_off(Side::Sink(e)),
        }
    }
    Ok(())
}

/// Back up one source into each of its sinks, reading it once: every entry
/// goes to every sink, and a file's content is read once for all the sinks
/// that want it. Never panics on plugin misbehaviour: every failure is in
/// the reports (one per sink, in the order given). `stop` is the run's: the
/// source also stops at its own time limit, a sink at its own and when its
/// lock is lost.
pub async fn run_source(
    plan: Arc<Plan>,
    source: PluginInstance,
    sinks: Vec<(Sink, Arc<Progress>)>,
    run: RunInfo,
    stop: &Stop,
) -> Vec<JobReport> {
    let started = Instant::now();
    let (stop, relay) = stop.child();
    let timer = stop.after(source.limits.timeout);
    let mut jobs: Vec<SinkJob> =
        sinks.into_iter().map(|(sink, progress)| SinkJob::new(sink, progress, &source.name, &run, &stop)).collect();
    // Stopping is cooperative; a source stuck in a call past its wind-down is cut off.
    let cut_off = async {
        let reason = stop.requested().await;
        tokio::time::sleep(WIND_DOWN).await;
        format!("{reason}, and the job did not stop within {}s; it was cut off", WIND_DOWN.as_secs())
    };
    let result = tokio::select! {
        result = source_job(&plan, &source, &mut jobs, &run, &stop) => result,
        message = cut_off => Err(message),
    };
    relay.abort();
    if let Some(timer) = timer {
        timer.abort();
    }
    let seconds = started.elapsed().as_secs_f64();
    jobs.into_iter().map(|job| job.into_report(result.as_ref().err().map(String::as_str), seconds)).collect()
}

/// Take each sink's lock, start the plugins, drive the source into every
/// sink, release what the source holds, and apply each sink's retention.
/// An `Err` fails every sink that has no failure of its own.
async fn source_job(
    plan: &Plan,
    source: &PluginInstance,
    sinks: &mut [SinkJob],
    run: &RunInfo,
    stop: &Stop,
) -> Result<(), String> {
    for sink in sinks.iter_mut() {
        sink.lock(plan, &source.name, run);
    }
    if !sinks.iter_mut().any(SinkJob::live) {
        return Ok(()); // each says why
    }
    let mut src = plan.start_source(source, &[]).await.map_err(|e| e.to_string())?;
    for sink in sinks.iter_mut().filter(|s| s.failure.is_none()) {
        match plan.start_sink(&sink.sink, &source.name).await {
            Ok(instance) => sink.instance = Some(instance),
            Err(e) => sink.cut_off(Side::Host(e.to_string())),
        }
    }
    stop.check().map_err(|r| Side::Stopped(r).to_string())?;
    let source_config = source.config.to_string();
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
    for sink in sinks.iter_mut() {
        if !sink.lock_held() {
            continue;
        }
        let instance = sink.instance.as_mut().expect("started");
        match instance.begin_backup(&sink.config, &context).await {
            Ok(backup) => sink.backup = Some(backup),
            Err(e) => sink.cut_off(Side::Sink(e)),
        }
    }
    let result = drive(&mut src, &session, sinks, stop).await;
    let outcome = match &result {
        Err(Side::Stopped(_)) => Outcome::Cancelled,
        _ if sinks.iter().any(|s| s.set.is_some()) => Outcome::Success,
        _ => Outcome::Failure,
    };
    // The source releases what it holds whatever happened; a failure here is
    // loud, because it can leave a snapshot behind on the source.
    let released = src.finish(&session, outcome).await;
    let _ = src.close_session(session).await;
    let source_warnings = src.log().warnings();
    for sink in sinks.iter_mut() {
        sink.report.warnings += source_warnings;
    }
    if let Err(e) = result {
        let e = match &released {
            Err(release) => format!("{e}; and the source could not release what it holds: {release}"),
            Ok(()) => e.to_string(),
        };
        for sink in sinks.iter_mut().filter(|s| s.set.is_none()) {
            sink.failure.get_or_insert_with(|| e.clone());
        }
        return Err(e);
    }
    if let Err(e) = released {
        let e = format!("the backup was stored, but the source could not release what it holds: {e}");
        tracing::error!(source = %source.name, "{e}");
        for sink in sinks.iter_mut() {
            sink.report.error = Some(e.clone());
        }
        return Ok(());
    }
    for sink in sinks.iter_mut().filter(|s| s.set.is_some()) {
        sink.prune(&source.name).await;
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
