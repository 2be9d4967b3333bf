//! One run as an unattended tool runs it: the notifiers hear its start and
//! its end (also when it cannot start at all), and the report carries how
//! each notification went. `run` and each scheduled run of `daemon` are
//! this.

use orchestrator_core::report::RunReport;
use orchestrator_core::run::{PreparedRun, RunOptions, prepare};
use orchestrator_core::stop::Stop;
use orchestrator_core::{Error, Plan};
use orchestrator_notify::Notifiers;

/// Run `plan` for `options`. `on_start` sees the prepared run before it
/// starts (the CLI shows its progress). Returns the error of a run that
/// could not start, after telling the notifiers.
pub async fn run_once(
    plan: Plan,
    options: &RunOptions,
    stop: &Stop,
    on_start: impl FnOnce(&PreparedRun),
) -> (RunReport, Option<Error>) {
    let notifiers = Notifiers::prepare(&plan.pipeline, plan.env());
    if let Ok(text) = std::fs::read_to_string(&plan.pipeline.file)
        && !orchestrator_core::recovery::is_current(&plan.pipeline, plan.env(), &text)
    {
        tracing::warn!(
            "no recovery kit was made since {} changed: run `orchestrator recovery-kit {0} --output FILE` and keep \
             FILE off this machine",
            plan.pipeline.file.display()
        );
    }
    let pipeline = plan.pipeline.name.clone();
    let sources: Vec<String> = match options.sources.is_empty() {
        true => plan.pipeline.sources.iter().map(|s| s.name.clone()).collect(),
        false => options.sources.clone(),
    };
    let started = orchestrator_core::timespec::now();
    let prepared = match prepare(plan, options) {
        Ok(p) => p,
        Err(e) => {
            let mut report = RunReport::not_started(&pipeline, started, e.to_string());
            report.notifications = notifiers.finished(&report, &sources).await;
            return (report, Some(e));
        }
    };
    let mut notifications = notifiers.started(&pipeline, prepared.run_id(), &sources).await;
    on_start(&prepared);
    let mut report = prepared.run(stop).await;
    notifications.extend(notifiers.finished(&report, &sources).await);
    report.notifications = notifications;
    (report, None)
}
