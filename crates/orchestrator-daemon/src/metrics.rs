//! Prometheus metrics of a pipeline: each (source, sink)'s last run from the
//! history, and its chains as `status` reads them. Written as a file for
//! node_exporter's textfile collector (`--metrics-file`), or served at
//! `/metrics` by `daemon` (`metrics_listen`).

use orchestrator_config::Pipeline;
use orchestrator_core::history::History;
use orchestrator_core::report::{Outcome, StatusReport};
use orchestrator_core::{Builtin, Environment, Plan};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// What the metrics are made of, gathered after each run.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pipeline: String,
    history: History,
    status: Vec<StatusReport>,
    /// Scheduled times skipped because the source's last run was still going.
    skipped: BTreeMap<String, u64>,
}

impl Metrics {
    /// Read the history and ask each sink for its chains.
    pub async fn gather(pipeline: &Pipeline, env: &Environment, builtins: &'static [Builtin]) -> Metrics {
        let history = orchestrator_core::plan::cache_dir(pipeline, env).map(|d| History::load(&d)).unwrap_or_default();
        let status = match Plan::new(pipeline.clone(), env.clone(), builtins) {
            Ok(plan) => orchestrator_core::read::status(plan, &[]).await.unwrap_or_else(|e| {
                tracing::warn!("metrics: cannot read the chains: {e}");
                Vec::new()
            }),
            Err(e) => {
                tracing::warn!("metrics: cannot read the chains: {e}");
                Vec::new()
            }
        };
        Metrics { pipeline: pipeline.name.clone(), history, status, skipped: BTreeMap::new() }
    }

    /// Count a skipped scheduled time of `source`.
    pub fn skipped(&mut self, source: &str) {
        *self.skipped.entry(source.to_string()).or_default() += 1;
    }

    /// Keep the skip counters of `earlier` (they live as long as the daemon).
    pub fn carry_counters(&mut self, earlier: &Metrics) {
        self.skipped = earlier.skipped.clone();
    }

    /// The Prometheus text format; ages are counted to `now` (seconds since
    /// the epoch).
    pub fn render(&self, now: i64) -> String {
        let mut out = Families::default();
        let p = &self.pipeline;
        for (source, history) in &self.history.sources {
            for (sink, job) in &history.jobs {
                let labels = labels(&[("pipeline", p), ("source", source), ("sink", sink)]);
                out.gauge(
                    "orchestrator_last_run_timestamp_seconds",
                    "When the last run of the job started.",
                    &labels,
                    job.started as f64,
                );
                let success = if job.outcome == Outcome::Ok { 1.0 } else { 0.0 };
                out.gauge(
                    "orchestrator_last_run_success",
                    "1 when the last run of the job stored its backup.",
                    &labels,
                    success,
                );
                out.gauge(
                    "orchestrator_last_run_duration_seconds",
                    "How long the last run of the job took.",
                    &labels,
                    job.seconds,
                );
                out.gauge(
                    "orchestrator_last_run_read_bytes",
                    "Content bytes the last run read from the source.",
                    &labels,
                    job.bytes_read as f64,
                );
                out.gauge(
                    "orchestrator_last_run_stored_bytes",
                    "Bytes the last run stored in the sink.",
                    &labels,
                    job.bytes_stored as f64,
                );
                out.gauge(
                    "orchestrator_last_run_files",
                    "Files whose content the last run read.",
                    &labels,
                    job.files_read as f64,
                );
                if let Some(t) = job.last_success {
                    out.gauge(
                        "orchestrator_last_success_timestamp_seconds",
                        "When the last run that stored a backup started.",
                        &labels,
                        t as f64,
                    );
                }
            }
        }
        for s in &self.status {
            let labels = labels(&[("pipeline", p), ("source", &s.source), ("sink", &s.sink)]);
            out.gauge(
                "orchestrator_status_ok",
                "1 when the sink could list the backups.",
                &labels,
                if s.error.is_none() { 1.0 } else { 0.0 },
            );
            let Some(chains) = &s.chains else { continue };
            out.gauge(
                "orchestrator_chains",
                "Backup chains (a full backup and its incrementals) stored.",
                &labels,
                chains.len() as f64,
            );
            let newest_chain = chains.last().map_or(0, |c| c.sets.len());
            out.gauge("orchestrator_chain_length", "Sets in the newest chain.", &labels, newest_chain as f64);
            if let Some(t) = s.newest {
                out.gauge(
                    "orchestrator_newest_backup_timestamp_seconds",
                    "When the newest stored backup was taken.",
                    &labels,
                    t as f64,
                );
                out.gauge(
                    "orchestrator_newest_backup_age_seconds",
                    "How old the newest stored backup is.",
                    &labels,
                    (now - t).max(0) as f64,
                );
            }
        }
        for (source, n) in &self.skipped {
            let labels = labels(&[("pipeline", p), ("source", source)]);
            out.counter(
                "orchestrator_skipped_runs_total",
                "Scheduled runs skipped because the last one was still going.",
                &labels,
                *n as f64,
            );
        }
        out.text()
    }
}

/// Metric families in the order first seen, each with one HELP and TYPE.
#[derive(Default)]
struct Families {
    order: Vec<&'static str>,
    samples: BTreeMap<&'static str, (&'static str, &'static str, Vec<String>)>,
}

impl Families {
    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &str, value: f64) {
        self.add(name, help, "gauge", labels, value);
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: &str, value: f64) {
        self.add(name, help, "counter", labels, value);
    }

    fn add(&mut self, name: &'static str, help: &'static str, kind: &'static str, labels: &str, value: f64) {
        if !self.samples.contains_key(name) {
            self.order.push(name);
        }
        let family = self.samples.entry(name).or_insert_with(|| (help, kind, Vec::new()));
        family.2.push(format!("{name}{{{labels}}} {value}"));
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let (help, kind, lines) = &self.samples[name];
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

/// `a="x",b="y"` with the values escaped as the text format wants.
fn labels(pairs: &[(&str, &str)]) -> String {
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",")
}

/// Write `text` to `path` whole: a collector reading it never sees half.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".orchestrator-metrics-").tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    // node_exporter runs as its own user and must read it; it holds no secret.
    file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_core::history::{LastJob, SourceHistory};
    use orchestrator_core::report::{ChainReport, SetReport};

    #[test]
    fn each_family_once_with_escaped_labels() {
        let mut history = History::default();
        let job = LastJob {
            started: 100,
            outcome: Outcome::Ok,
            seconds: 1.5,
            bytes_read: 10,
            files_read: 2,
            entries: 3,
            bytes_stored: 7,
            last_success: Some(100),
        };
        for source in ["a", "b\"q"] {
            let mut h = SourceHistory { last_start: 100, ..Default::default() };
            h.jobs.insert("nas".into(), job.clone());
            history.sources.insert(source.into(), h);
        }
        let set = SetReport { kind: "full", time: 90, volumes: 1, size: 7, changed_entries: None };
        let status = vec![StatusReport {
            source: "a".into(),
            sink: "nas".into(),
            chains: Some(vec![ChainReport { sets: vec![set.clone(), SetReport { time: 95, ..set }] }]),
            notes: None,
            error: None,
            newest: Some(95),
            too_old: None,
        }];
        let mut m = Metrics { pipeline: "home".into(), history, status, skipped: BTreeMap::new() };
        m.skipped("a");
        let text = m.render(200);
        assert_eq!(text.matches("# TYPE orchestrator_last_run_success gauge").count(), 1, "{text}");
        assert!(
            text.contains("orchestrator_last_run_success{pipeline=\"home\",source=\"b\\\"q\",sink=\"nas\"} 1"),
            "{text}"
        );
        assert!(text.contains("orchestrator_chain_length{pipeline=\"home\",source=\"a\",sink=\"nas\"} 2"), "{text}");
        assert!(
            text.contains("orchestrator_newest_backup_age_seconds{pipeline=\"home\",source=\"a\",sink=\"nas\"} 105"),
            "{text}"
        );
        assert!(text.contains("orchestrator_skipped_runs_total{pipeline=\"home\",source=\"a\"} 1"), "{text}");
    }
}
