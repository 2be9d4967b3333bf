//! `run`: back up every source into each of its sinks (a job per pair,
//! each source read once for all of its sinks), up to `concurrency` sources
//! at a time, and report each job.

use crate::error::{Error, Result};
use crate::job::{Progress, RunInfo, run_source};
use crate::plan::Plan;
use crate::report::{JobReport, REPORT_VERSION, RunReport};
use crate::stop::{Stop, StopReason};
use std::sync::Arc;

/// What to back up.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only these sources (all when empty).
    pub sources: Vec<String>,
    /// Start new full backups.
    pub full: bool,
}

/// A run whose plugins are loaded and storages opened, ready to start.
pub struct PreparedRun {
    plan: Arc<Plan>,
    jobs: Vec<PreparedJob>,
    info: RunInfo,
}

/// One job of a prepared run, with its live counters.
pub struct PreparedJob {
    source: orchestrator_config::PluginInstance,
    sink: orchestrator_config::Sink,
    /// `source→sink`, for progress lines.
    pub name: String,
    /// Counters the job updates as it goes.
    pub progress: Arc<Progress>,
}

impl PreparedJob {
    /// The source's name (a key of the history).
    pub fn source_name(&self) -> &str {
        &self.source.name
    }

    /// The sink's name (a key of the source's jobs in the history).
    pub fn sink_name(&self) -> &str {
        &self.sink.instance.name
    }
}

/// Load what the selected sources and their sinks need. Fails before any
/// job starts when a name, a plugin or a target is wrong.
pub fn prepare(mut plan: Plan, options: &RunOptions) -> Result<PreparedRun> {
    let sources = plan.selected_sources(&options.sources)?;
    let pairs = plan.pairs(&sources);
    if pairs.is_empty() {
        return Err(Error::Usage("no sink backs up the selected sources; nothing to do".into()));
    }
    let instances: Vec<_> = pairs.iter().flat_map(|(src, snk)| [src.clone(), snk.instance.clone()]).collect();
    plan.load_plugins(&instances)?;
    let sinks: Vec<_> = pairs.iter().map(|(_, s)| s.clone()).collect();
    plan.open_storages(&sinks)?;
    let jobs = pairs
        .into_iter()
        .map(|(source, sink)| PreparedJob {
            name: format!("{}→{}", source.name, sink.instance.name),
            source,
            sink,
            progress: Arc::default(),
        })
        .collect();
    let info = RunInfo { run_id: crate::report::run_id(), time: crate::timespec::now(), force_full: options.full };
    Ok(PreparedRun { plan: Arc::new(plan), jobs, info })
}

impl PreparedRun {
    /// The jobs, for a progress display.
    pub fn jobs(&self) -> &[PreparedJob] {
        &self.jobs
    }

    /// The run's id, known before it starts (notifications of its start
    /// carry it).
    pub fn run_id(&self) -> &str {
        &self.info.run_id
    }

    /// Run every job to its end. `stop` is the run's: a signal asks every
    /// job to stop; each also stops at its own time limit and when its lock
    /// is lost. Failures of jobs are in the report, never an `Err`.
    pub async fn run(self, stop: &Stop) -> RunReport {
        let PreparedRun { plan, jobs, info } = self;
        tracing::info!(pipeline = %plan.pipeline.name, run = %info.run_id, "starting {} job(s)", jobs.len());
        let limit = Arc::new(tokio::sync::Semaphore::new(plan.pipeline.concurrency.max(1)));
        // Jobs grouped by source, in the order the first of each came.
        let mut groups: Vec<(orchestrator_config::PluginInstance, Vec<_>)> = Vec::new();
        for job in jobs {
            match groups.iter_mut().find(|(source, _)| source.name == job.source.name) {
                Some((_, sinks)) => sinks.push((job.sink, job.progress)),
                None => groups.push((job.source, vec![(job.sink, job.progress)])),
            }
        }
        let mut handles = Vec::new();
        for (source, sinks) in groups {
            let (plan, info, limit, stop) = (plan.clone(), info.clone(), limit.clone(), stop.clone());
            let names: Vec<(String, String)> =
                sinks.iter().map(|(sink, _)| (source.name.clone(), sink.instance.name.clone())).collect();
            let handle = tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                run_source(plan, source, sinks, info, &stop).await
            });
            handles.push((names, handle));
        }
        let mut reports = Vec::new();
        for (names, handle) in handles {
            match handle.await {
                Ok(group) => reports.extend(group),
                Err(e) => reports.extend(names.into_iter().map(|(source, sink)| JobReport {
                    error: Some(format!("the job crashed the host task: {e}")),
                    ..JobReport::new(source, sink, info.time)
                })),
            }
        }
        let reason = stop.reason();
        let mut report = RunReport {
            report_version: REPORT_VERSION,
            pipeline: plan.pipeline.name.clone(),
            run_id: info.run_id,
            time: info.time,
            ok: false,
            stopped: reason.as_ref().map(ToString::to_string),
            signal: match reason {
                Some(StopReason::Signal { number, .. }) => Some(number),
                _ => None,
            },
            error: None,
            jobs: reports,
            notifications: Vec::new(),
        };
        report.ok = report.failed() == 0;
        if plan.pipeline.store_pipeline {
            store_pipeline(&plan, &mut report);
        }
        if let Some(dir) = plan.cache_dir() {
            crate::history::record(&dir, &report);
        }
        report
    }
}

/// The pipeline file into each target a job stored a backup in; a failure
/// is a warning of the first such job (the backups are stored).
fn store_pipeline(plan: &Plan, report: &mut RunReport) {
    let text = match std::fs::read_to_string(&plan.pipeline.file) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot read {} to store it: {e}", plan.pipeline.file.display());
            return;
        }
    };
    let mut done: Vec<&str> = Vec::new();
    for sink in &plan.pipeline.sinks {
        let Some(target) = sink.target.as_deref() else { continue };
        if done.contains(&target) || !report.jobs.iter().any(|j| j.sink == sink.instance.name && j.ok) {
            continue;
        }
        done.push(target);
        match crate::stored_pipeline::store(plan, sink, &text) {
            Ok(at) => tracing::info!(sink = %sink.instance.name, "stored the pipeline file as {at}"),
            Err(e) => {
                tracing::warn!(sink = %sink.instance.name, "{e}");
                if let Some(job) = report.jobs.iter_mut().find(|j| j.sink == sink.instance.name) {
                    job.warnings += 1;
                }
            }
        }
    }
}

/// Back up: [`prepare`], then [`PreparedRun::run`].
pub async fn run_pipeline(plan: Plan, options: &RunOptions, stop: &Stop) -> Result<RunReport> {
    Ok(prepare(plan, options)?.run(stop).await)
}
