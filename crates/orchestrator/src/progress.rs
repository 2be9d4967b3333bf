//! Live progress of a run on a terminal: one bar per job on stderr, with
//! the bytes and files read so far and the rate. When the job's last run
//! (from the history) read N bytes, the bar runs to N with an ETA; without
//! one it is a spinner, with no ETA. Nothing is drawn when the caller says
//! stderr is no terminal (and in tests), and stdout is never touched.
//! Log lines written through [`stderr`] pass above the bars.
//!
//! Job names need no escaping: source and sink names are `[a-z0-9_-]`.

use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use orchestrator_core::history::History;
use orchestrator_core::job::Progress;
use orchestrator_core::report::Outcome;
use orchestrator_core::run::PreparedJob;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the bars read the jobs' counters.
const POLL: Duration = Duration::from_millis(200);

/// The bars on the terminal now, for log lines to pass above them.
static DRAWN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// The bars of a run; [`Bars::finish`] clears them.
pub struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    poller: Option<tokio::task::JoinHandle<()>>,
}

/// The history the bars' lengths come from, read only when they are shown.
pub fn load_history(show: bool, cache_dir: Option<std::path::PathBuf>) -> History {
    match (show, cache_dir) {
        (true, Some(dir)) => History::load(&dir),
        _ => History::default(),
    }
}

/// How many bytes a job of `source` into `sink` is expected to read: what
/// its last run read, when that run succeeded and read anything (a failed
/// or stopped run's count is no measure).
pub fn expected_bytes(history: &History, source: &str, sink: &str) -> Option<u64> {
    let last = history.sources.get(source)?.jobs.get(sink)?;
    (last.outcome == Outcome::Ok && last.bytes_read > 0).then_some(last.bytes_read)
}

/// A bar's length once `read` bytes are read of an `expected` size: it
/// grows with a job that reads more than last time, never past 100 %.
fn length(expected: u64, read: u64) -> u64 {
    expected.max(read)
}

/// Where the bars are drawn: stderr when shown, else nowhere.
fn draw_target(show: bool) -> ProgressDrawTarget {
    if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() }
}

/// A bar's template: `width` aligns the job names; no colours with `NO_COLOR`.
fn template(width: usize, expected: bool, color: bool) -> String {
    let (name, bar, spinner) = match color {
        true => (".bold", "{bar:24.cyan/blue}", "{spinner:.cyan}"),
        false => ("", "{bar:24}", "{spinner}"),
    };
    match expected {
        true => format!(
            "{{prefix:<{width}{name}}} [{bar}] {{binary_bytes:>10}} / {{binary_total_bytes:<10}} \
             {{msg}}  {{binary_bytes_per_sec:>12}}  ETA {{eta}}"
        ),
        false => {
            format!("{{prefix:<{width}{name}}} {spinner} {{binary_bytes:>10}}  {{msg}}  {{binary_bytes_per_sec:>12}}")
        }
    }
}

impl Bars {
    /// Bars for `jobs` on stderr when `show`; when not, nothing at all is
    /// drawn and no task runs. Call it on the runtime, as the run starts.
    pub fn start(show: bool, history: &History, jobs: &[PreparedJob]) -> Bars {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let jobs = jobs
            .iter()
            .map(|j| (j.name.clone(), expected_bytes(history, j.source_name(), j.sink_name()), j.progress.clone()));
        Bars::new(draw_target(show), color, jobs.collect())
    }

    fn new(target: ProgressDrawTarget, color: bool, jobs: Vec<(String, Option<u64>, Arc<Progress>)>) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        if multi.is_hidden() {
            return Bars { multi, bars: Vec::new(), poller: None };
        }
        let width = jobs.iter().map(|(name, ..)| name.chars().count()).max().unwrap_or(0);
        let mut polled = Vec::new();
        for (name, expected, progress) in jobs {
            let style = ProgressStyle::with_template(&template(width, expected.is_some(), color))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("eta", eta)
                .progress_chars("=> ");
            let bar = match expected {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            // Styled before it joins the multi (so its colours follow
            // stderr's), by calls that do not draw it outside the multi.
            polled.push((multi.add(bar.with_style(style).with_prefix(name)), progress));
        }
        let bars = polled.iter().map(|(bar, _)| bar.clone()).collect();
        *DRAWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(multi.clone());
        let poller = tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            loop {
                tick.tick().await;
                for (bar, progress) in &polled {
                    show(bar, progress);
                }
            }
        });
        Bars { multi, bars, poller: Some(poller) }
    }

    /// Stop and clear the bars, before the report is printed.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(p) = self.poller.take() {
            p.abort();
            DRAWN.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        for bar in &self.bars {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// Standard error for the log: while bars are drawn, a line is written
/// above them (they are lifted, the line written, and they are drawn again
/// below it) instead of between them, where it would leave torn bars on
/// the screen. The log subscriber writes each event with one `write_all`.
pub fn stderr() -> LogWriter {
    LogWriter
}

/// See [`stderr`].
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let drawn = DRAWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match drawn {
            Some(multi) => multi.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The time left, once there is a rate to tell it by (indicatif's says 0s
/// before the first byte).
fn eta(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = match state.pos() > 0 && state.per_sec() > 0.0 {
        true => write!(w, "{:#}", HumanDuration(state.eta())),
        false => write!(w, "?"),
    };
}

/// One poll of a job's counters onto its bar.
fn show(bar: &ProgressBar, progress: &Progress) {
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let files = progress.files_read.load(Ordering::Relaxed);
    let entries = progress.entries.load(Ordering::Relaxed);
    if let Some(n) = bar.length() {
        bar.set_length(length(n, bytes));
    }
    bar.set_message(format!("{}, {}", count(files, "file", "files"), count(entries, "entry", "entries")));
    bar.set_position(bytes);
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_core::history::{LastJob, SourceHistory};

    fn history(outcome: Outcome, bytes_read: u64) -> History {
        let job = LastJob {
            started: 1,
            outcome,
            seconds: 2.0,
            bytes_read,
            files_read: 3,
            entries: 4,
            bytes_stored: 5,
            last_success: None,
        };
        let source = SourceHistory { last_start: 1, jobs: [("nas".to_string(), job)].into() };
        History { sources: [("docs".to_string(), source)].into() }
    }

    #[test]
    fn expected_bytes_are_the_last_successful_run_s() {
        assert_eq!(expected_bytes(&history(Outcome::Ok, 1000), "docs", "nas"), Some(1000));
        // No run of this pair: a spinner, no ETA.
        assert_eq!(expected_bytes(&history(Outcome::Ok, 1000), "docs", "usb"), None);
        assert_eq!(expected_bytes(&history(Outcome::Ok, 1000), "mail", "nas"), None);
        assert_eq!(expected_bytes(&History::default(), "docs", "nas"), None);
        // A stopped or failed run read only part; an empty one says nothing.
        assert_eq!(expected_bytes(&history(Outcome::Cancelled, 1000), "docs", "nas"), None);
        assert_eq!(expected_bytes(&history(Outcome::Failed, 1000), "docs", "nas"), None);
        assert_eq!(expected_bytes(&history(Outcome::Ok, 0), "docs", "nas"), None);
    }

    #[test]
    fn the_length_grows_with_a_job_that_reads_more() {
        assert_eq!(length(1000, 10), 1000);
        assert_eq!(length(1000, 1000), 1000);
        assert_eq!(length(1000, 1500), 1500);
    }

    #[test]
    fn templates_parse_and_have_colours_only_when_asked() {
        for (expected, color) in [(true, true), (true, false), (false, true), (false, false)] {
            let t = template(9, expected, color);
            assert!(ProgressStyle::with_template(&t).is_ok(), "{t}");
            assert_eq!(t.contains("cyan") || t.contains("bold"), color, "{t}");
            assert_eq!(t.contains("ETA"), expected, "{t}");
        }
    }

    #[test]
    fn nothing_is_drawn_when_not_shown() {
        assert!(draw_target(false).is_hidden());
        let job = ("docs→nas".to_string(), Some(1000), Arc::new(Progress::default()));
        let bars = Bars::new(draw_target(false), true, vec![job]);
        assert!(bars.multi.is_hidden());
        assert!(bars.bars.is_empty() && bars.poller.is_none());
        bars.finish();
    }

    #[test]
    fn bars_follow_the_counters() {
        // `Bars::new` makes no bars on a hidden target: drive one directly.
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
        let progress = Progress::default();
        progress.bytes.store(400, Ordering::Relaxed);
        progress.files_read.store(2, Ordering::Relaxed);
        progress.entries.store(5, Ordering::Relaxed);
        show(&bar, &progress);
        assert_eq!((bar.position(), bar.length()), (400, Some(1000)));
        assert_eq!(bar.message(), "2 files, 5 entries");
        progress.files_read.store(1, Ordering::Relaxed);
        progress.entries.store(1, Ordering::Relaxed);
        show(&bar, &progress);
        assert_eq!(bar.message(), "1 file, 1 entry");
        progress.bytes.store(1500, Ordering::Relaxed);
        show(&bar, &progress);
        assert_eq!((bar.position(), bar.length()), (1500, Some(1500)));
        let spinner = ProgressBar::hidden();
        show(&spinner, &progress);
        assert_eq!((spinner.position(), spinner.length()), (1500, None));
    }
}
