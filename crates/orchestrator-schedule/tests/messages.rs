//! What a person editing a pipeline file reads when a value is refused.

use orchestrator_schedule::{Schedule, ScheduleError, parse_duration, time_zone};

fn error(text: &str) -> String {
    match Schedule::parse(text) {
        Ok(s) => panic!("`{text}` was accepted as {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_documented_examples_word_for_word() {
    assert_eq!(error("61 * * * *"), "`61 * * * *`: minute 61 is out of range 0-59");
    assert_eq!(
        error("0 3 * *"),
        "`0 3 * *`: a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 4"
    );
    assert_eq!(error("0 0 30 2 *"), "`0 0 30 2 *` can never run: February has no day 30");
    assert_eq!(
        time_zone("Europe/Madird").unwrap_err().to_string(),
        "`Europe/Madird` is not a known time zone (IANA names such as Europe/Madrid or UTC)"
    );
}

#[test]
fn never_running_expressions_are_refused_at_parse_time() {
    assert_eq!(
        error("0 0 31 4,6,9,11 *"),
        "`0 0 31 4,6,9,11 *` can never run: April, June, September and November have no day 31"
    );
    assert_eq!(error("0 0 30,31 feb *"), "`0 0 30,31 feb *` can never run: February has no day 30 or 31");
    // Possible somewhere, so accepted: leap days, a month that has the day,
    // and any expression where the weekday alone can match.
    for ok in ["0 0 29 2 *", "0 0 31 2,3 *", "0 0 30 2 MON", "0 0 31 */2 *"] {
        assert!(Schedule::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn out_of_range_values_name_the_field_and_its_range() {
    assert_eq!(error("0 24 * * *"), "`0 24 * * *`: hour 24 is out of range 0-23");
    assert_eq!(error("0 0 0 * *"), "`0 0 0 * *`: day-of-month 0 is out of range 1-31");
    assert_eq!(error("0 0 32 * *"), "`0 0 32 * *`: day-of-month 32 is out of range 1-31");
    assert_eq!(error("0 0 * 13 *"), "`0 0 * 13 *`: month 13 is out of range 1-12 or JAN-DEC");
    assert_eq!(error("0 0 * * 8"), "`0 0 * * 8`: day-of-week 8 is out of range 0-7 or SUN-SAT");
    assert_eq!(error("0-60 * * * *"), "`0-60 * * * *`: minute 60 is out of range 0-59");
    assert_eq!(error("99999999999 * * * *"), "`99999999999 * * * *`: minute 99999999999 is out of range 0-59");
}

#[test]
fn malformed_items_show_what_a_field_takes() {
    assert_eq!(
        error("0 0 L * *"),
        "`0 0 L * *`: day-of-month `L` is not understood; write `*`, a value in 1-31, a range such as `1-5`, \
         a list such as `1,15` or a step such as `*/10` (no `?`, `L`, `W` or `#`)"
    );
    for bad in
        ["0 0 ? * *", "0 0 * * MON#2", "0 0 * * MOON", "1,,2 * * * *", "0 0 * JANUARY *", "*-5 * * * *", "-5 * * * *"]
    {
        assert!(matches!(Schedule::parse(bad), Err(ScheduleError::BadItem { .. })), "{bad}");
    }
    assert_eq!(
        error("*/0 * * * *"),
        "`*/0 * * * *`: minute step `*/0` needs a whole number of at least 1 after `/`, as in `*/15`"
    );
    for bad in ["*/ * * * *", "*/x * * * *", "*/-1 * * * *", "*/1/2 * * * *"] {
        assert!(matches!(Schedule::parse(bad), Err(ScheduleError::BadStep { .. })), "{bad}");
    }
    assert_eq!(
        error("0 22-2 * * *"),
        "`0 22-2 * * *`: hour range `22-2` runs backwards; write the smaller value first, \
         or a list such as `22-23,0-3` to wrap around"
    );
}

#[test]
fn field_counts_hint_at_the_likely_mistake() {
    assert_eq!(
        error("0 0 3 * * *"),
        "`0 0 3 * * *`: a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 6; \
         seconds and years are not supported"
    );
    assert_eq!(
        error("daily"),
        "`daily`: a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 1; \
         or use a macro such as `@daily` or an interval such as `every 6h`"
    );
    assert_eq!(Schedule::parse("  "), Err(ScheduleError::Empty));
    assert!(error("").contains("`every 6h`"));
}

#[test]
fn macros_and_intervals() {
    assert_eq!(
        error("@reboot"),
        "`@reboot` is not a schedule macro; use @hourly, @daily (or @midnight), @weekly, @monthly \
         or @yearly (or @annually), or a cron expression such as `0 3 * * *`"
    );
    assert_eq!(error("every 0s"), "`every 0s`: an interval must be at least 1s, such as `every 30s` or `every 6h`");
    assert_eq!(
        error("every 6x"),
        "`every 6x`: `x` is not a unit; write `every` and whole numbers each followed by a unit s, m (minutes), \
         h, D or W, such as `every 6h`, `every 90m` or `every 1h30m`"
    );
    assert!(error("every").contains("nothing follows `every`"));
    assert!(error("every6h").contains("write a space after `every`"));
    assert!(error("every 1h 30m").contains("write the parts together"));
    assert!(error("every 1M").contains("months and years vary in length"));
    assert!(error("every 6").contains("the number `6` has no unit"));
}

#[test]
fn every_message_quotes_what_was_written() {
    for bad in [
        "61 * * * *",
        "0 3 * *",
        "0 0 30 2 *",
        "0 0 L * *",
        "*/0 * * * *",
        "0 5-3 * * *",
        "@often",
        "every 0s",
        "every 6x",
        "every",
    ] {
        assert!(error(bad).starts_with(&format!("`{bad}`")), "{}", error(bad));
    }
    assert!(parse_duration("10x").unwrap_err().to_string().starts_with("`10x` is not a duration"));
}
