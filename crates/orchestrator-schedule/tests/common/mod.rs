//! Helpers shared by the integration tests: instants written with their
//! offset, and runs of `next_after` shown on the zone's wall clock.

#![allow(dead_code)] // Each test file uses a different subset.

use orchestrator_schedule::{Schedule, TimeZone, Timestamp, time_zone};

/// An instant written as RFC 3339 with its offset, as a person reads it.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn zone(name: &str) -> TimeZone {
    time_zone(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn schedule(text: &str) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// `2024-03-31T03:00+02:00`: wall clock and offset, so a DST mistake shows.
pub fn show(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string()
}

/// The next `n` times a cron schedule fires after `from`.
pub fn fires(text: &str, zone_name: &str, from: &str, n: usize) -> Vec<String> {
    let (s, tz) = (schedule(text), zone(zone_name));
    let mut after = at(from);
    (0..n)
        .map(|_| {
            let next = s.next_after(after, after, &tz).unwrap_or_else(|| panic!("{text} stopped after {after}"));
            assert!(next > after, "{text}: {next} is not after {after}");
            after = next;
            show(next, &tz)
        })
        .collect()
}

/// Every time a cron schedule fires in `(from, until]`.
pub fn fires_until(text: &str, tz: &TimeZone, from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let s = schedule(text);
    let mut out = Vec::new();
    let mut after = from;
    while let Some(next) = s.next_after(after, from, tz).filter(|&t| t <= until) {
        assert!(next > after, "{text}: {next} is not after {after}");
        out.push(next);
        after = next;
    }
    out
}
