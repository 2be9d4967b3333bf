//! Time zones: finding them by name, and turning the wall-clock times a
//! cron expression names into instants across DST changes.

use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};

use crate::ScheduleError;
use crate::cron::Cron;

/// An IANA zone name (`Europe/Madrid`, `UTC`) looked up in the system
/// database, then jiff's bundled copy.
///
/// jiff's global database is a single source chosen once (`TZDIR`, else
/// /usr/share/zoneinfo and friends, else the bundle), so a system copy that
/// exists but lacks a zone (a trimmed container image, an old tzdata) would
/// hide the bundle's entry; hence the second, explicit lookup. Names are
/// matched without regard to ASCII case, as jiff does.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    let unknown = || ScheduleError::UnknownZone { name: name.to_string() };
    let zone = jiff::tz::db().get(name).or_else(|_| TimeZoneDatabase::bundled().get(name)).map_err(|_| unknown())?;
    // `Etc/Unknown` is jiff's stand-in for "could not tell", not a zone
    // anyone means to schedule in.
    if zone.is_unknown() {
        return Err(unknown());
    }
    Ok(zone)
}

/// The zone a daemon uses when the pipeline names none: the system's (`TZ`,
/// /etc/localtime), UTC when unknown.
///
/// jiff's own fallback is `Etc/Unknown`, which behaves like UTC but prints
/// oddly in messages, so we say UTC. A `TZ` naming a zone only the bundle
/// has is looked up there rather than dropped.
pub fn system_time_zone() -> TimeZone {
    if let Ok(zone) = TimeZone::try_system()
        && !zone.is_unknown()
    {
        return zone;
    }
    std::env::var("TZ")
        .ok()
        .and_then(|tz| {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            let name = name.rsplit_once("zoneinfo/").map_or(name, |(_, name)| name);
            time_zone(name).ok()
        })
        .unwrap_or(TimeZone::UTC)
}

/// The first instant after `after` at which `cron` is due in `tz`.
///
/// Candidates are wall-clock minutes; each becomes an instant by jiff's
/// "compatible" rule (a time in a gap moves forward by the gap, a time in a
/// fold takes its first occurrence). The answer is the earliest such instant
/// after `after`, so the times a schedule fires form one fixed set and a
/// daemon started at any moment agrees with one that ran all along.
pub(crate) fn next_cron(cron: &Cron, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    // Start early enough to see a wall-clock time in a gap that has just
    // passed: it resolves up to the gap's length after the change.
    let mut from = earliest_recent_offset(after, tz).to_datetime(after);
    let last_year = from.year().saturating_add(10).min(9999);
    let mut best: Option<Timestamp> = None;
    loop {
        let Some(civil) = cron.next_from(from, last_year) else { return best };
        let ambiguous = tz.to_ambiguous_timestamp(civil);
        let in_gap = matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. });
        let Ok(at) = ambiguous.compatible() else { return best };
        if at > after {
            best = Some(best.map_or(at, |best| best.min(at)));
            // Outside gaps, later wall-clock times are later instants, so
            // nothing further can beat this one. A gap's times land after
            // the change and can be overtaken by the next real times.
            if !in_gap {
                return best;
            }
        }
        from = match civil.checked_add(SignedDuration::from_mins(1)) {
            Ok(next) => next,
            Err(_) => return best,
        };
    }
}

/// The smallest UTC offset in force during the 25 hours up to `after`.
///
/// Read with the offset from before a spring-forward change, `after` falls
/// on the wall clock before that gap, so the search sees the gap's times.
/// 25 hours covers the longest gap on record (Samoa skipped a whole day in
/// 2011) and the hour after it; an earlier start only costs a few
/// candidates, never a wrong answer.
fn earliest_recent_offset(after: Timestamp, tz: &TimeZone) -> Offset {
    let since = after.checked_sub(SignedDuration::from_hours(25)).unwrap_or(Timestamp::MIN);
    let mut lowest = tz.to_offset(after).min(tz.to_offset(since));
    for change in tz.preceding(after) {
        if change.timestamp() <= since {
            break;
        }
        lowest = lowest.min(change.offset());
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_resolve_in_any_case() {
        assert_eq!(time_zone("Europe/Madrid").unwrap().iana_name(), Some("Europe/Madrid"));
        assert_eq!(time_zone("europe/madrid").unwrap().iana_name(), Some("Europe/Madrid"));
        assert_eq!(time_zone("UTC").unwrap(), TimeZone::UTC);
        assert!(time_zone("Australia/Lord_Howe").is_ok());
    }

    #[test]
    fn unknown_names_say_what_a_name_looks_like() {
        for name in ["Europe/Madird", "", "CEST+2", "Etc/Unknown", "../../etc/passwd"] {
            assert_eq!(
                time_zone(name).unwrap_err().to_string(),
                format!("`{name}` is not a known time zone (IANA names such as Europe/Madrid or UTC)")
            );
        }
    }

    #[test]
    fn the_bundle_knows_every_zone_the_tests_use() {
        // What a machine without /usr/share/zoneinfo gets.
        let bundle = TimeZoneDatabase::bundled();
        for name in
            ["Europe/Madrid", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC", "America/Santiago"]
        {
            assert!(bundle.get(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn system_zone_is_always_some_zone() {
        let zone = system_time_zone();
        assert!(!zone.is_unknown());
    }

    #[test]
    fn the_offset_window_reaches_back_over_a_gap() {
        let madrid = time_zone("Europe/Madrid").unwrap();
        // 2024-03-31 01:00 UTC: 02:00 CET became 03:00 CEST.
        let change: Timestamp = "2024-03-31T01:00:00Z".parse().unwrap();
        let minutes = |m| change.checked_add(SignedDuration::from_mins(m)).unwrap();
        assert_eq!(earliest_recent_offset(minutes(10), &madrid), jiff::tz::offset(1));
        assert_eq!(earliest_recent_offset(minutes(-10), &madrid), jiff::tz::offset(1));
        assert_eq!(earliest_recent_offset(minutes(26 * 60), &madrid), jiff::tz::offset(2));
    }
}
