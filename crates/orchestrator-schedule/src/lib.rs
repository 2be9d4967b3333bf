//! When a scheduled backup is due, as a pure function.
//!
//! A `schedule` value is one of:
//!
//! - a five-field cron expression `minute hour day-of-month month
//!   day-of-week` (Vixie/POSIX: lists, ranges, steps, `N/STEP` for
//!   `N-max/STEP`, JAN-DEC and SUN-SAT names in any case, Sunday as 0 or 7;
//!   when both day fields are restricted a day matching either runs);
//! - a macro: `@hourly`, `@daily`/`@midnight`, `@weekly` (Sunday 00:00),
//!   `@monthly`, `@yearly`/`@annually`;
//! - `every <interval>`, such as `every 6h` or `every 1h30m`: fixed spacing
//!   in real time from an anchor (the last run's start or the daemon's).
//!
//! [`Schedule::next_after`] answers "when next, after this instant, in this
//! zone" and touches no clock, so the daemon's timing is testable to the
//! minute, including the nights the clocks change.
//!
//! # DST
//!
//! Cron fields name wall-clock times. Each matching wall-clock minute in the
//! zone becomes an instant by jiff's "compatible" rule:
//!
//! - in a gap (spring forward) it moves forward by the gap: a daily `30 2`
//!   in Europe/Madrid runs at 03:30 CEST on the last Sunday of March, once;
//!   an hourly job's 02:00 and 03:00 both land on 03:00 CEST and it runs
//!   once;
//! - in a fold (fall back) it takes the first occurrence: the hour from 02:00
//!   to 03:00 happens twice in October, and jobs in it run in the first pass
//!   only, so no wall-clock time ever runs twice.
//!
//! The answer is the earliest of those instants after `after`. Searching
//! from the wall-clock time of `after` finds it, except just after a spring
//! forward, where a time in the gap (02:30, landing at 03:30) comes after
//! times already past it (03:10); so the search starts a gap earlier, and a
//! daemon started at 03:10 CEST still runs that day's 02:30 job at 03:30.
//! The times a schedule fires are thus one fixed set, strictly increasing,
//! whatever instant the daemon asks from. Intervals ignore the zone
//! altogether.
//!
//! # Why not a cron crate
//!
//! The cron crates either want six or seven fields (seconds, years: `cron`,
//! `jiff-cron`), depend on chrono (`cron`, `croner`, `saffron`) or settle DST
//! gaps and folds their own way (Vixie's daemon, for one, runs a gap's jobs
//! at the moment of the change), while the rules above are part of our
//! contract, tested here zone by zone. The matcher is a few hundred lines of
//! bit sets (`cron`) and jumps from month to month and day to day rather
//! than minute to minute.
//!
//! # Zones
//!
//! [`time_zone`] looks names up in the system database and then in the copy
//! of the IANA database bundled into the binary, so a container without
//! /usr/share/zoneinfo still knows `Europe/Madrid`.

#![warn(missing_docs)]

mod cron;
mod error;
mod interval;
mod zone;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use error::ScheduleError;
pub use interval::parse_duration;
/// The instant and zone types of [`Schedule::next_after`], re-exported so
/// callers need not pin the same jiff version.
pub use jiff::{Timestamp, tz::TimeZone};
pub use zone::{system_time_zone, time_zone};

use cron::Cron;

/// A parsed `schedule` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// As written, for messages and `Display`.
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Cron(Cron),
    Every(Duration),
}

impl Schedule {
    /// Parse: five-field cron `m h dom mon dow`; `@hourly`,
    /// `@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually`;
    /// or `every <interval>` where interval is digits+unit concatenated with
    /// units s, m, h, D (also d), W, e.g. `every 6h`, `every 90m`, `every
    /// 2s`, `every 1h30m`. Interval must be >= 1s.
    ///
    /// A cron expression no date can match (`0 0 30 2 *`) is refused here,
    /// not discovered by a daemon waiting forever.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let kind = if trimmed.starts_with('@') {
            let cron = macro_expansion(trimmed).and_then(|cron| Cron::parse(cron).ok());
            Kind::Cron(cron.ok_or_else(|| ScheduleError::UnknownMacro { text: text.to_string() })?)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "every") {
            let interval = match rest.strip_prefix(|c: char| c.is_whitespace()) {
                Some(interval) => interval.trim_start(),
                None if rest.is_empty() => "",
                None => {
                    let problem = "write a space after `every`".to_string();
                    return Err(ScheduleError::BadInterval { text: text.to_string(), problem });
                }
            };
            if interval.is_empty() {
                let problem = "nothing follows `every`".to_string();
                return Err(ScheduleError::BadInterval { text: text.to_string(), problem });
            }
            Kind::Every(interval::parse_every(text, interval)?)
        } else {
            Kind::Cron(Cron::parse(text)?)
        };
        Ok(Schedule { text: text.to_string(), kind })
    }

    /// The first time it is due strictly after `after`, in zone `tz`.
    /// `anchor` is where an interval's grid starts (the last run's start or
    /// the daemon's start): for `every D` the answer is the smallest
    /// `anchor + k*D` (k >= 1) that is > after. Cron schedules ignore
    /// `anchor`. None only if the cron expression can never match again
    /// within 10 years.
    ///
    /// For cron, each matching wall-clock minute in `tz` becomes an instant
    /// by jiff's "compatible" rule and the answer is the earliest one after
    /// `after` (see [DST](crate#dst)), so asking again from the answer walks
    /// every run once, in order. Also `None` if the answer would lie past the
    /// year 9999, the end of jiff's range.
    pub fn next_after(&self, after: Timestamp, anchor: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(cron) => zone::next_cron(cron, after, tz),
            Kind::Every(every) => interval::next_on_grid(after, anchor, *every),
        }
    }

    /// The text as written, for messages.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for `every …` schedules.
    pub fn is_interval(&self) -> bool {
        matches!(self.kind, Kind::Every(_))
    }
}

/// The text as written, so messages show what the person typed.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Same as [`Schedule::parse`], for `"…".parse::<Schedule>()`.
impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

/// The cron expression a macro stands for (Vixie's table).
fn macro_expansion(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        _ => return None,
    })
}

/// `text` without a leading `prefix` in any ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_are_their_cron_expressions() {
        for (word, cron) in [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@DAILY", "0 0 * * *"),
        ] {
            assert_eq!(Schedule::parse(word).unwrap().kind, Schedule::parse(cron).unwrap().kind, "{word}");
        }
    }

    #[test]
    fn every_takes_one_concatenated_interval() {
        let every = |text: &str| match Schedule::parse(text).unwrap().kind {
            Kind::Every(d) => d.as_secs(),
            Kind::Cron(_) => panic!("{text} is not an interval"),
        };
        assert_eq!(every("every 6h"), 6 * 3600);
        assert_eq!(every("every 90m"), 90 * 60);
        assert_eq!(every("every 2s"), 2);
        assert_eq!(every("every 1h30m"), 5400);
        assert_eq!(every("every 1D"), 86_400);
        assert_eq!(every("every 1d"), 86_400);
        assert_eq!(every("every 2W"), 14 * 86_400);
        assert_eq!(every("  Every   6h "), 6 * 3600);
    }
}
