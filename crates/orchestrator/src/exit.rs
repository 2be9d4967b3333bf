//! Exit codes, all in one place: what each error and each report means to a
//! scheduler (cron, systemd, a Kubernetes CronJob).

use orchestrator_core::Error;
use orchestrator_core::inspect::ValidateReport;
use orchestrator_core::report::{RestoreReport, RunReport};

/// Everything worked.
pub const OK: u8 = 0;
/// At least one source, job or entry failed.
pub const FAILED: u8 = 1;
/// Bad usage or configuration: the person has to fix the command or file.
pub const USAGE: u8 = 2;
/// Nothing to restore at that time or path.
pub const NOTHING: u8 = 3;

/// The code of an operation that could not be done.
pub fn of_error(error: &Error) -> u8 {
    match error {
        Error::Config(_) | Error::Usage(_) | Error::Plugin(_) => USAGE,
        Error::NothingToRestore(_) => NOTHING,
        Error::Failed(_) | Error::Lock(_) | Error::Entry(_) => FAILED,
    }
}

/// The code of a run: a signal's conventional 128 + its number tells a
/// scheduler the run was stopped, not broken.
pub fn of_run(report: &RunReport) -> u8 {
    match report.signal {
        Some(number) => 128u8.saturating_add(number as u8),
        None if report.ok => OK,
        None => FAILED,
    }
}

/// The code of a restore: any entry that failed fails it.
pub fn of_restore(report: &RestoreReport) -> u8 {
    if report.ok() { OK } else { FAILED }
}

/// The code of `validate`: a problem in the pipeline is the person's to fix.
pub fn of_validate(report: &ValidateReport) -> u8 {
    if report.ok { OK } else { USAGE }
}

/// The code of checks where each pair passes or not (`status`, `verify`).
pub fn of_checks(all_ok: bool) -> u8 {
    if all_ok { OK } else { FAILED }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_core::report::{EntryFailure, JobReport, REPORT_VERSION};

    fn run(signal: Option<i32>, job_ok: bool) -> RunReport {
        let mut job = JobReport::new("docs".into(), "offsite".into(), 0);
        job.ok = job_ok;
        RunReport {
            report_version: REPORT_VERSION,
            pipeline: "p".into(),
            run_id: "r".into(),
            time: 0,
            ok: job_ok,
            stopped: signal.map(|_| "cancelled".into()),
            signal,
            error: None,
            jobs: vec![job],
            notifications: Vec::new(),
        }
    }

    fn restore(failures: usize, stopped_early: bool) -> RestoreReport {
        RestoreReport {
            report_version: REPORT_VERSION,
            source: "docs".into(),
            sink: "offsite".into(),
            target: "/r".into(),
            entries: 3,
            files: 2,
            bytes: 10,
            failures: (0..failures).map(|i| EntryFailure { path: format!("f{i}"), error: "corrupt".into() }).collect(),
            skipped: vec![],
            summary: None,
            stopped_early,
            seconds: 0.0,
        }
    }

    #[test]
    fn errors_map_to_the_documented_codes() {
        assert_eq!(of_error(&Error::Config("x.toml:3: …".into())), 2);
        assert_eq!(of_error(&Error::Usage("no source `x`".into())), 2);
        assert_eq!(of_error(&Error::Plugin("wants more".into())), 2);
        assert_eq!(of_error(&Error::NothingToRestore("no backup".into())), 3);
        assert_eq!(of_error(&Error::Failed("sink failed".into())), 1);
        assert_eq!(of_error(&Error::Lock("locked by another run".into())), 1);
        assert_eq!(of_error(&Error::Entry("a/b: permission denied".into())), 1);
    }

    #[test]
    fn runs_fail_with_any_job_and_signals_give_128_plus_their_number() {
        assert_eq!(of_run(&run(None, true)), 0);
        assert_eq!(of_run(&run(None, false)), 1);
        assert_eq!(of_run(&run(Some(15), false)), 143);
        assert_eq!(of_run(&run(Some(2), true)), 130);
    }

    #[test]
    fn a_restore_with_any_failed_entry_fails() {
        assert_eq!(of_restore(&restore(0, false)), 0);
        assert_eq!(of_restore(&restore(1, false)), 1);
        assert_eq!(of_restore(&restore(1, true)), 1);
        assert_eq!(of_checks(true), 0);
        assert_eq!(of_checks(false), 1);
    }

    #[test]
    fn a_pipeline_with_problems_is_a_usage_error() {
        let report = |problems: Vec<String>| ValidateReport { ok: problems.is_empty(), plugins: vec![], problems };
        assert_eq!(of_validate(&report(vec![])), 0);
        assert_eq!(of_validate(&report(vec!["p.toml:3: sources.x: wants more".into()])), 2);
    }
}
