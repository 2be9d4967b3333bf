//! A run report as text for people: a subject line and one line per job.
//! Names come from sources and servers, so control characters are shown
//! escaped: a mail client or a phone is a screen too.

use orchestrator_core::report::{JobReport, Outcome, RunReport, human_bytes};
use std::fmt::Write;

/// `home: backup failed (1 of 3 jobs)`, `home: backup ok (3 jobs)`.
pub fn subject(report: &RunReport) -> String {
    let name = printable(&report.pipeline);
    if let Some(stopped) = &report.stopped
        && !report.ok
    {
        return format!("{name}: backup stopped ({})", printable(stopped));
    }
    match (report.ok, report.jobs.len(), report.failed()) {
        (_, 0, _) if report.error.is_some() => format!("{name}: backup could not start"),
        (true, n, _) => format!("{name}: backup ok ({n} job{})", plural(n)),
        (false, n, failed) => format!("{name}: backup failed ({failed} of {n} job{})", plural(n)),
    }
}

/// The subject, then each job: outcome, what was stored, what was read,
/// how long, and the error of a job that failed.
pub fn body(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", subject(report));
    let _ = writeln!(out, "run {}, started {}", report.run_id, time(report.time));
    if let Some(e) = &report.error {
        let _ = writeln!(out, "\nerror: {}", printable(e));
    }
    if !report.jobs.is_empty() {
        out.push('\n');
    }
    for job in &report.jobs {
        let _ = writeln!(out, "{}", job_line(job));
        if let Some(e) = &job.error {
            let _ = writeln!(out, "    {}", printable(e));
        }
    }
    out
}

fn job_line(job: &JobReport) -> String {
    let outcome = match job.outcome {
        Outcome::Ok if job.error.is_none() => "ok",
        Outcome::Ok => "stored, then failed",
        Outcome::Failed => "FAILED",
        Outcome::Cancelled => "CANCELLED",
    };
    let mut line = format!("{} -> {}: {outcome}", printable(&job.source), printable(&job.sink));
    if let Some(set) = &job.set {
        let _ = write!(line, ", {} set of {}", set.kind, human_bytes(set.size));
    }
    let _ = write!(line, ", {} files ({}) read in {:.1} s", job.files_read, human_bytes(job.bytes_read), job.seconds);
    if job.unreadable > 0 {
        let _ = write!(line, ", {} unreadable", job.unreadable);
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Seconds since the epoch as UTC, ISO 8601.
fn time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

/// Control characters as `\u{…}`: they could rewrite a terminal or a mail.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_core::report::{REPORT_VERSION, SetReport};

    #[test]
    fn a_failed_job_shows_its_error_and_names_are_escaped() {
        let mut ok = JobReport::new("photos".into(), "nas".into(), 0);
        ok.outcome = Outcome::Ok;
        ok.ok = true;
        ok.set = Some(SetReport { kind: "full", time: 0, volumes: 1, size: 3 << 20, changed_entries: None });
        let mut bad = JobReport::new("mail\x1b[2J".into(), "offsite".into(), 0);
        bad.error = Some("s3://b: cannot PUT x".into());
        let report = RunReport {
            report_version: REPORT_VERSION,
            pipeline: "home".into(),
            run_id: "r1".into(),
            time: 0,
            ok: false,
            stopped: None,
            signal: None,
            error: None,
            jobs: vec![ok, bad],
            notifications: Vec::new(),
        };
        assert_eq!(subject(&report), "home: backup failed (1 of 2 jobs)");
        let text = body(&report);
        assert!(text.contains("photos -> nas: ok, full set of 3.0 MiB"), "{text}");
        assert!(text.contains("mail\\u{1b}[2J -> offsite: FAILED"), "{text}");
        assert!(text.contains("    s3://b: cannot PUT x"), "{text}");
        assert!(text.contains("started 1970-01-01 00:00:00 UTC"), "{text}");
    }
}
