//! `daemon`: run each source on its schedule until stopped.
//!
//! Every source with a schedule (its own or the pipeline's) has a next time.
//! When times come, the sources due and idle start as one run; a source
//! whose last run is still going is never started twice: its time is a
//! skip, logged and counted. `catch_up` runs at start a source whose first
//! scheduled time after its last run (from the history) has passed. A
//! reload request re-reads the pipeline file: a file that does not check
//! keeps the running pipeline and says why. A stop asks the runs going on to
//! stop, waits for them, and returns.

use crate::metrics::Metrics;
use crate::once::run_once;
use orchestrator_config::Pipeline;
use orchestrator_core::history::History;
use orchestrator_core::report::RunReport;
use orchestrator_core::run::RunOptions;
use orchestrator_core::stop::Stop;
use orchestrator_core::{Builtin, Environment, Error, Plan};
use orchestrator_schedule::{Schedule, TimeZone, Timestamp};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The daemon's longest sleep: a wall clock that jumps (a suspended
/// laptop, NTP) is noticed within it.
const LONGEST_NAP: Duration = Duration::from_secs(30);

/// What the daemon is given.
pub struct DaemonOptions {
    /// The pipeline file, re-read on reload.
    pub file: PathBuf,
    /// Where secrets and the cache come from.
    pub env: Environment,
    /// The plugins compiled into the binary.
    pub builtins: &'static [Builtin],
    /// Write the metrics here after every run.
    pub metrics_file: Option<PathBuf>,
}

/// What the daemon did, when it returns.
#[derive(Debug, Default)]
pub struct DaemonSummary {
    /// Runs started.
    pub runs: u64,
    /// Runs with a failed job, or that could not start.
    pub failed_runs: u64,
    /// Scheduled times skipped because the source was still running.
    pub skipped: u64,
}

/// One scheduled source.
struct Slot {
    source: String,
    schedule: Schedule,
    /// The scheduled time, without jitter: intervals keep their grid on it.
    time: Timestamp,
    /// When it starts: `time` plus its jitter.
    due: Timestamp,
}

/// The pipeline being run and what its schedules need.
struct Current {
    pipeline: Pipeline,
    zone: TimeZone,
    slots: Vec<Slot>,
}

impl Current {
    /// Schedules of `pipeline` from `now`: each source's next time after its
    /// last run (or after `now`), or now when `catch_up` finds one missed.
    fn new(pipeline: Pipeline, env: &Environment, now: Timestamp, catch_up: bool) -> Result<Current, Error> {
        let zone = match &pipeline.timezone {
            Some(name) => orchestrator_schedule::time_zone(name).map_err(|e| Error::Config(e.to_string()))?,
            None => orchestrator_schedule::system_time_zone(),
        };
        let history = orchestrator_core::plan::cache_dir(&pipeline, env).map(|d| History::load(&d)).unwrap_or_default();
        let jitter = pipeline.schedule_jitter;
        let mut slots = Vec::new();
        for source in &pipeline.sources {
            let Some(schedule) = pipeline.schedule_of(source).cloned() else { continue };
            let last = history.last_start(&source.name).and_then(|t| Timestamp::from_second(t).ok());
            let missed = match last {
                Some(last) => schedule.next_after(last, last, &zone).is_some_and(|t| t <= now),
                None => true,
            };
            let time = if catch_up && pipeline.catch_up && missed {
                tracing::info!(source = %source.name, "a scheduled run was missed while the daemon was down: running it now");
                Some(now)
            } else {
                schedule.next_after(now, last.unwrap_or(now), &zone)
            };
            let Some(time) = time else {
                tracing::warn!(source = %source.name, schedule = %schedule, "the schedule never comes again");
                continue;
            };
            slots.push(Slot { source: source.name.clone(), schedule, time, due: with_jitter(time, jitter) });
        }
        if slots.is_empty() {
            return Err(Error::Usage(format!(
                "{}: no source has a schedule; set `schedule` in [pipeline] (e.g. \"0 3 * * *\", \"@daily\", \
                 \"every 6h\") or in a source's table",
                pipeline.file.display()
            )));
        }
        for slot in &slots {
            tracing::info!(source = %slot.source, schedule = %slot.schedule, next = %slot.due.to_zoned(zone.clone()), "scheduled");
        }
        Ok(Current { pipeline, zone, slots })
    }
}

fn with_jitter(time: Timestamp, jitter: Duration) -> Timestamp {
    if jitter.is_zero() {
        return time;
    }
    let offset = Duration::from_millis(fastrand::u64(0..jitter.as_millis() as u64));
    time.checked_add(offset).unwrap_or(time)
}

/// Run the pipeline in `options.file` on its schedules until `stop`.
/// `reload` asks to re-read the file (SIGHUP). Fails only at start: a file
/// that does not check, no schedule, a metrics address that cannot be used.
pub async fn daemon(options: DaemonOptions, stop: &Stop, reload: Arc<Notify>) -> Result<DaemonSummary, Error> {
    let load = |file: &PathBuf| -> Result<Pipeline, Error> {
        orchestrator_config::load(file).map_err(|e| Error::Config(e.to_string().trim_end().to_string()))
    };
    let mut current = Current::new(load(&options.file)?, &options.env, Timestamp::now(), true)?;
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let server = match current.pipeline.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| Error::Usage(format!("pipeline.metrics_listen: cannot listen on {address}: {e}")))?;
            tracing::info!("metrics at http://{address}/metrics");
            Some(tokio::spawn(crate::serve::serve(listener, metrics.clone())))
        }
        None => None,
    };
    refresh_metrics(&current.pipeline, &options, &metrics).await;
    let mut summary = DaemonSummary::default();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut runs: JoinSet<(Vec<String>, RunReport)> = JoinSet::new();
    loop {
        let now = Timestamp::now();
        let next = current.slots.iter().map(|s| s.due).min();
        let nap = next.map_or(LONGEST_NAP, |due| {
            Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO).min(LONGEST_NAP)
        });
        tokio::select! {
            _ = stop.requested() => break,
            _ = reload.notified() => {
                match load(&options.file).and_then(|p| Current::new(p, &options.env, Timestamp::now(), false)) {
                    Ok(new) => {
                        tracing::info!("reloaded {}", options.file.display());
                        current = new;
                    }
                    Err(e) => tracing::error!("reload refused, the running pipeline is kept: {e}"),
                }
                continue;
            }
            Some(done) = runs.join_next(), if !runs.is_empty() => {
                if let Ok((sources, report)) = done {
                    finished(&sources, &report, &mut running, &mut summary);
                }
                refresh_metrics(&current.pipeline, &options, &metrics).await;
                continue;
            }
            _ = tokio::time::sleep(nap) => {}
        }
        let now = Timestamp::now();
        let mut batch = Vec::new();
        for slot in current.slots.iter_mut().filter(|s| s.due <= now) {
            if running.contains(&slot.source) {
                tracing::warn!(source = %slot.source, "skipped the scheduled run: the last one is still going");
                summary.skipped += 1;
                metrics.lock().unwrap_or_else(|e| e.into_inner()).skipped(&slot.source);
            } else {
                batch.push(slot.source.clone());
            }
            let after = if slot.time > now { slot.time } else { now };
            match slot.schedule.next_after(after, slot.time, &current.zone) {
                Some(time) => {
                    slot.time = time;
                    slot.due = with_jitter(time, current.pipeline.schedule_jitter);
                }
                // Never again: park it where nothing reaches.
                None => slot.due = Timestamp::MAX,
            }
        }
        if batch.is_empty() {
            continue;
        }
        running.extend(batch.iter().cloned());
        summary.runs += 1;
        let plan = Plan::new(current.pipeline.clone(), options.env.clone(), options.builtins);
        let (stop, sources, name) = (stop.clone(), batch, current.pipeline.name.clone());
        runs.spawn(async move {
            let options = RunOptions { sources: sources.clone(), full: false };
            let report = match plan {
                Ok(plan) => run_once(plan, &options, &stop, |_| {}).await.0,
                Err(e) => RunReport::not_started(&name, Timestamp::now().as_second(), e.to_string()),
            };
            (sources, report)
        });
    }
    // Stopped: the runs under way were asked to stop with the daemon's stop.
    while let Some(done) = runs.join_next().await {
        if let Ok((sources, report)) = done {
            finished(&sources, &report, &mut running, &mut summary);
        }
    }
    refresh_metrics(&current.pipeline, &options, &metrics).await;
    if let Some(server) = server {
        server.abort();
    }
    Ok(summary)
}

fn finished(sources: &[String], report: &RunReport, running: &mut BTreeSet<String>, summary: &mut DaemonSummary) {
    for s in sources {
        running.remove(s);
    }
    if !report.ok {
        summary.failed_runs += 1;
    }
    let failed: Vec<String> = report
        .jobs
        .iter()
        .filter(|j| !j.succeeded())
        .map(|j| format!("{}→{}: {}", j.source, j.sink, j.error.as_deref().unwrap_or("stopped")))
        .collect();
    match (&report.error, failed.is_empty()) {
        (Some(e), _) => tracing::error!(run = %report.run_id, sources = ?sources, "the run could not start: {e}"),
        (None, true) => {
            tracing::info!(run = %report.run_id, sources = ?sources, "run finished: {} job(s) ok", report.jobs.len())
        }
        (None, false) => tracing::error!(run = %report.run_id, sources = ?sources, "run failed: {}", failed.join("; ")),
    }
}

async fn refresh_metrics(pipeline: &Pipeline, options: &DaemonOptions, shared: &Arc<Mutex<Metrics>>) {
    if pipeline.metrics_listen.is_none() && options.metrics_file.is_none() {
        return;
    }
    let mut fresh = Metrics::gather(pipeline, &options.env, options.builtins).await;
    let text = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        fresh.carry_counters(&shared);
        *shared = fresh;
        shared.render(Timestamp::now().as_second())
    };
    if let Some(path) = &options.metrics_file
        && let Err(e) = crate::metrics::write_file(path, &text)
    {
        tracing::warn!("cannot write the metrics to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_delays_within_its_bound_and_none_is_none() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(with_jitter(t, Duration::ZERO), t);
        let jitter = Duration::from_secs(600);
        let delays: Vec<i64> = (0..1000).map(|_| with_jitter(t, jitter).as_second() - t.as_second()).collect();
        assert!(delays.iter().all(|d| (0..600).contains(d)), "{delays:?}");
        // Spread over the window, not bunched at its start.
        assert!(delays.iter().any(|d| *d > 450) && delays.iter().any(|d| *d < 150));
    }
}
