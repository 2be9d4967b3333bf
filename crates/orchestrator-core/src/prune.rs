//! `prune`: each sink's retention (`keep_full`, `keep_within`) applied
//! outside a run, under the run lock so it never races a backup; with
//! `dry_run` the sink's own retention runs against a storage that only
//! records deletes, so the list is exactly what a real prune would remove.

use crate::error::Result;
use crate::lock::{Owner, RunLock};
use crate::plan::Plan;
use crate::report::PruneReport;

/// Prune the selected sources in each of their sinks.
pub async fn prune(mut plan: Plan, sources: &[String], dry_run: bool) -> Result<Vec<PruneReport>> {
    let sources = plan.selected_sources(sources)?;
    let sinks = plan.pipeline.sinks.clone();
    plan.load_plugins(sinks.iter().map(|s| &s.instance))?;
    plan.open_storages(&sinks)?;
    let mut reports = Vec::new();
    for (source, sink) in plan.pairs(&sources) {
        let result = prune_one(&plan, &sink, &source.name, dry_run).await;
        if let Ok(removed) = &result {
            let verb = if dry_run { "would remove" } else { "removed" };
            tracing::info!(source = %source.name, sink = %sink.instance.name, "{verb} {} object(s)", removed.len());
        }
        let (removed, error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        reports.push(PruneReport {
            source: source.name.clone(),
            sink: sink.instance.name.clone(),
            dry_run,
            removed,
            error,
        });
    }
    Ok(reports)
}

async fn prune_one(
    plan: &Plan,
    sink: &orchestrator_config::Sink,
    source: &str,
    dry_run: bool,
) -> std::result::Result<Vec<String>, String> {
    let config = sink.instance.config.to_string();
    if dry_run {
        let (mut instance, recorded) = plan.start_sink_dry_run(sink, source).await.map_err(|e| e.to_string())?;
        let listed = instance.prune(&config, source).await.map_err(|e| e.to_string())?;
        // What reached the storage is the truth; the plugin's list is its word.
        let prefix = format!("{source}/");
        return Ok(match recorded {
            Some(r) => r.deleted().iter().map(|n| n.strip_prefix(&prefix).unwrap_or(n).to_string()).collect(),
            None => listed,
        });
    }
    let Some(target) = plan.storage_of(sink) else { return Ok(Vec::new()) };
    let owner = Owner {
        run_id: crate::report::run_id(),
        pipeline: plan.pipeline.name.clone(),
        sink: sink.instance.name.clone(),
    };
    let lock = RunLock::acquire(target, source, &owner).map_err(|e| e.to_string())?;
    let removed = match plan.start_sink(sink, source).await {
        Ok(mut instance) => instance.prune(&config, source).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = lock.release() {
        tracing::warn!("{e}");
    }
    removed
}
