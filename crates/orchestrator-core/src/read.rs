//! Reading what sinks stored, without restoring: `list`, `status`, `verify`.

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::report::{ArchiveCheck, ChainReport, SetReport, StatusReport, VerifyReport};
use crate::restore::open_reader;
use crate::timespec;
use orchestrator_runtime::types::{Entry, ReadRequest};

/// Every entry of a source's backup at `time` (newest when none), handed to
/// `each` as the sink reads it: a listing of millions of entries is never
/// held in memory.
pub async fn list(
    mut plan: Plan,
    source: &str,
    sink: Option<&str>,
    time: Option<&str>,
    mut each: impl FnMut(Entry),
) -> Result<()> {
    let time = time.map(|t| timespec::parse(t, timespec::now())).transpose().map_err(Error::Usage)?;
    let source = plan.source(source)?.clone();
    let sink = plan.sink_for(&source.name, sink)?.clone();
    plan.load_plugins([&sink.instance])?;
    plan.open_storages([&sink])?;
    let mut snk = plan.start_sink(&sink, &source.name).await?;
    let request = ReadRequest { source_name: source.name.clone(), time, path: None, with_content: false };
    let reader = open_reader(&mut snk, &sink, &request).await?;
    loop {
        match snk.reader_next(&reader).await {
            Ok(Some(e)) => each(e),
            Ok(None) => break,
            Err(e) => return Err(Error::Failed(format!("reading the backup failed: {e}"))),
        }
    }
    let _ = snk.close_reader(reader).await;
    Ok(())
}

/// Chains, sets and sizes of each selected source in each of its sinks.
/// A sink that cannot answer is a report with its error.
pub async fn status(mut plan: Plan, sources: &[String]) -> Result<Vec<StatusReport>> {
    let sources = plan.selected_sources(sources)?;
    let sinks = plan.pipeline.sinks.clone();
    plan.load_plugins(sinks.iter().map(|s| &s.instance))?;
    plan.open_storages(&sinks)?;
    let mut out = Vec::new();
    for (source, sink) in plan.pairs(&sources) {
        let answer = match plan.start_sink(&sink, &source.name).await {
            Ok(mut snk) => snk.status(&sink.instance.config.to_string(), &source.name).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (source, sink) = (source.name.clone(), sink.instance.name.clone());
        out.push(match answer {
            Ok(status) => StatusReport {
                source,
                sink,
                newest: status.chains.iter().flat_map(|c| &c.sets).map(|s| s.time).max(),
                chains: Some(
                    status
                        .chains
                        .iter()
                        .map(|c| ChainReport { sets: c.sets.iter().map(SetReport::from).collect() })
                        .collect(),
                ),
                notes: Some(status.notes),
                error: None,
                too_old: None,
            },
            Err(e) => {
                StatusReport { source, sink, chains: None, notes: None, error: Some(e), newest: None, too_old: None }
            }
        });
    }
    Ok(out)
}

/// Check each selected source's archives in each of its sinks, and with
/// `compare` the newest backup against the live source.
pub async fn verify(mut plan: Plan, sources: &[String], compare: bool) -> Result<Vec<VerifyReport>> {
    let sources = plan.selected_sources(sources)?;
    let sinks = plan.pipeline.sinks.clone();
    plan.load_plugins(sinks.iter().map(|s| &s.instance))?;
    if compare {
        plan.load_plugins(sources.iter())?;
    }
    plan.open_storages(&sinks)?;
    let mut out = Vec::new();
    for (source, sink) in plan.pairs(&sources) {
        let archive = match plan.start_sink(&sink, &source.name).await {
            Ok(mut snk) => snk
                .verify(&sink.instance.config.to_string(), &source.name)
                .await
                .map(|r| ArchiveCheck {
                    objects_checked: u64::from(r.objects_checked),
                    entries_checked: r.entries_checked,
                    problems: r.problems,
                })
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let compared =
            if compare { Some(crate::compare::compare(&plan, &source, &sink, timespec::now()).await) } else { None };
        out.push(VerifyReport {
            source: source.name.clone(),
            sink: sink.instance.name.clone(),
            archive,
            compare: compared,
        });
    }
    Ok(out)
}
