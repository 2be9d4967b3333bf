//! `run`: back up every (source, sink) pair, up to `concurrency` at a time.

use super::{exit, human_bytes, json_out, now, selected_sources};
use crate::backup::{JobReport, Progress, RunInfo, run_job};
use crate::cli::RunArgs;
use crate::host::{Host, UsageError};
use crate::stop::{Stop, StopReason, on_signals};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn run(args: RunArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let sources = selected_sources(&host, &args.sources)?;
    let mut pairs = Vec::new();
    for source in &sources {
        for sink in host.pipeline.sinks.iter().filter(|s| s.inputs.contains(&source.name)) {
            pairs.push((source.clone(), sink.clone()));
        }
    }
    if pairs.is_empty() {
        return Err(UsageError("no sink backs up the selected sources; nothing to do".into()));
    }
    let instances: Vec<_> = pairs.iter().flat_map(|(src, snk)| [src.clone(), snk.instance.clone()]).collect();
    host.load_plugins(&instances)?;
    let sinks: Vec<_> = pairs.iter().map(|(_, s)| s.clone()).collect();
    host.open_backends(&sinks)?;
    let concurrency = host.pipeline.concurrency.max(1);
    let host = Arc::new(host);
    let run = RunInfo { run_id: run_id(), time: now(), force_full: args.full };
    tracing::info!(pipeline = %host.pipeline.name, run = %run.run_id, "starting {} job(s)", pairs.len());

    let stop = Stop::new();
    // Without the handlers a signal would kill the process mid-call, and a
    // source could not release what it holds.
    let signals = on_signals(stop.clone()).map_err(|e| UsageError(format!("cannot watch for signals: {e}")))?;
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut handles = Vec::new();
    let mut progresses = Vec::new();
    for (source, sink) in pairs {
        let progress = Arc::new(Progress::default());
        progresses.push((format!("{}→{}", source.name, sink.instance.name), progress.clone()));
        let (host, run, limit, stop) = (host.clone(), run.clone(), limit.clone(), stop.clone());
        let (source_name, sink_name) = (source.name.clone(), sink.instance.name.clone());
        let handle = tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            run_job(host, source, sink, run, progress, &stop).await
        });
        handles.push((source_name, sink_name, handle));
    }
    let ticker = std::io::stderr().is_terminal().then(|| tokio::spawn(show_progress(progresses)));

    let mut reports = Vec::new();
    for (source, sink, handle) in handles {
        let report = handle.await.unwrap_or_else(|e| JobReport {
            error: Some(format!("the job crashed the host task: {e}")),
            ..JobReport::new(source, sink)
        });
        reports.push(report);
    }
    signals.abort();
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r\x1b[K");
    }
    let failed = reports.iter().filter(|r| !r.ok || r.error.is_some()).count();
    if args.json {
        json_out(&serde_json::json!({
            "pipeline": host.pipeline.name,
            "run_id": run.run_id,
            "time": run.time,
            "ok": failed == 0,
            "jobs": reports,
        }));
    }
    for r in &reports {
        print_report(r, args.json);
    }
    // A signal's conventional code tells a scheduler the run was stopped, not broken.
    Ok(match stop.reason() {
        Some(StopReason::Signal { number, .. }) => 128 + number as u8,
        _ if failed == 0 => exit::OK,
        _ => exit::FAILED,
    })
}

fn print_report(r: &JobReport, json: bool) {
    let what = format!("{} → {}", r.source, r.sink);
    match (&r.error, &r.set) {
        (None, Some(set)) => {
            let line = format!(
                "{what}: ok, {} set, {} entries, {} files read ({}), stored {} in {} volume(s), {} warning(s), {:.1}s",
                set.kind,
                r.entries,
                r.files_read,
                human_bytes(r.bytes_read),
                human_bytes(set.size),
                set.volumes,
                r.warnings,
                r.seconds
            );
            if json {
                tracing::info!("{line}");
            } else {
                println!("{line}");
            }
        }
        (error, _) => {
            let message = error.as_deref().unwrap_or("failed");
            tracing::error!("{what} FAILED: {message}");
            if !json {
                println!("{what}: FAILED: {message}");
            }
        }
    }
}

async fn show_progress(jobs: Vec<(String, Arc<Progress>)>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        let line: Vec<String> = jobs
            .iter()
            .map(|(name, p)| {
                format!(
                    "{name}: {} entries, {}",
                    p.entries.load(Ordering::Relaxed),
                    human_bytes(p.bytes.load(Ordering::Relaxed))
                )
            })
            .collect();
        eprint!("\r\x1b[K{}", line.join(" | "));
    }
}

/// A run id that sorts by time and does not repeat: the time in hex and the pid.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}
