//! Prometheus' own linter for the text exposition format: `promtool check
//! metrics` (Debian's `prometheus`, which installs it as /usr/bin/promtool;
//! only the tool is used, never the server the package may start).
//!
//! It reads the text on stdin and exits 0 when it is clean, 1 when it does
//! not parse (e.g. `text format parsing error in line 1: expected float as
//! value, got "runs"`; a last line without its `\n` is such an error too), 3
//! when it parses but breaks a naming rule (`orch_runs counter metrics should
//! have "_total" suffix`, `orch_runs_total no help text`). Its findings go to
//! stderr. It does not notice a series written twice.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::require_program;

const PROMTOOL: &str = "/usr/bin/promtool";

/// Lints `text` as a `/metrics` page: `Ok(())` when promtool finds nothing,
/// else `Err` with what it said (and its exit status); `None` (after a
/// `SKIPPED` line) when promtool is not installed outside CI.
pub fn check_metrics(text: &str) -> Option<Result<(), String>> {
    let promtool = require_program(&[PROMTOOL], "prometheus")?;
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    // promtool may stop reading at a parse error: a broken pipe is its answer, not ours.
    let _ = child.stdin.take().expect("piped").write_all(text.as_bytes());
    let out = child.wait_with_output().expect("promtool ends");
    if out.status.success() {
        return Some(Ok(()));
    }
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some(Err(format!("{} ({})", said.trim(), out.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP orchestrator_runs_total Runs finished, by source and outcome.
# TYPE orchestrator_runs_total counter
orchestrator_runs_total{source=\"docs\",outcome=\"success\"} 3
orchestrator_runs_total{source=\"mail\",outcome=\"failure\"} 1
# HELP orchestrator_last_success_timestamp_seconds When each source last backed up successfully.
# TYPE orchestrator_last_success_timestamp_seconds gauge
orchestrator_last_success_timestamp_seconds{source=\"docs\"} 1.7e+09
# HELP orchestrator_run_duration_seconds How long runs took.
# TYPE orchestrator_run_duration_seconds histogram
orchestrator_run_duration_seconds_bucket{le=\"1\"} 0
orchestrator_run_duration_seconds_bucket{le=\"10\"} 2
orchestrator_run_duration_seconds_bucket{le=\"+Inf\"} 4
orchestrator_run_duration_seconds_sum 95.5
orchestrator_run_duration_seconds_count 4
";

    #[test]
    fn valid_text_passes() {
        let Some(result) = check_metrics(GOOD) else { return };
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_space_in_a_name_does_not_parse() {
        let Some(result) = check_metrics("# TYPE orchestrator runs gauge\norchestrator runs 3\n") else { return };
        let message = result.unwrap_err();
        assert!(message.contains("parsing error"), "{message}");
    }

    #[test]
    fn a_counter_without_total_is_a_lint_error() {
        let text = "# HELP orchestrator_runs Runs.\n# TYPE orchestrator_runs counter\norchestrator_runs 3\n";
        let Some(result) = check_metrics(text) else { return };
        let message = result.unwrap_err();
        assert!(message.contains("orchestrator_runs counter metrics should have \"_total\" suffix"), "{message}");
    }

    #[test]
    fn a_missing_help_and_final_newline_are_caught() {
        let Some(result) = check_metrics("orchestrator_up 1\n") else { return };
        assert!(result.unwrap_err().contains("orchestrator_up no help text"));
        let Some(result) = check_metrics(GOOD.trim_end()) else { return };
        assert!(result.unwrap_err().contains("unexpected end of input stream"));
    }
}
