//! Cron semantics away from DST: which days, months and years match.

mod common;

use common::{at, fires, schedule, show, zone};
use orchestrator_schedule::{Schedule, TimeZone, Timestamp};

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // The 13th or any Friday (Vixie): 13 Sep 2024 is a Friday, 13 Oct a Sunday.
    assert_eq!(
        fires("0 0 13 * FRI", "UTC", "2024-09-01T00:00Z", 8),
        [
            "2024-09-06T00:00+00:00",
            "2024-09-13T00:00+00:00",
            "2024-09-20T00:00+00:00",
            "2024-09-27T00:00+00:00",
            "2024-10-04T00:00+00:00",
            "2024-10-11T00:00+00:00",
            "2024-10-13T00:00+00:00",
            "2024-10-18T00:00+00:00",
        ]
    );
}

#[test]
fn both_must_match_when_either_starts_with_a_star() {
    // Only Fridays.
    assert_eq!(
        fires("0 0 * * FRI", "UTC", "2024-09-01T00:00Z", 2),
        ["2024-09-06T00:00+00:00", "2024-09-13T00:00+00:00"]
    );
    // `*/2` counts as a star: odd days that are also Fridays.
    assert_eq!(
        fires("0 0 */2 * 5", "UTC", "2024-09-01T00:00Z", 3),
        ["2024-09-13T00:00+00:00", "2024-09-27T00:00+00:00", "2024-10-11T00:00+00:00"]
    );
    // Only the 13th.
    assert_eq!(
        fires("0 0 13 * *", "UTC", "2024-09-01T00:00Z", 2),
        ["2024-09-13T00:00+00:00", "2024-10-13T00:00+00:00"]
    );
}

#[test]
fn names_in_any_case_and_ranges_of_names() {
    assert_eq!(
        fires("0 9 * jan,Jul Mon-fri", "UTC", "2024-06-28T00:00Z", 3),
        ["2024-07-01T09:00+00:00", "2024-07-02T09:00+00:00", "2024-07-03T09:00+00:00"]
    );
    assert_eq!(
        fires("0 9 * * SAT,SUN", "UTC", "2024-07-01T00:00Z", 2),
        ["2024-07-06T09:00+00:00", "2024-07-07T09:00+00:00"]
    );
}

#[test]
fn steps_and_ranges() {
    assert_eq!(
        fires("10-50/20 8-10/2 * * *", "UTC", "2024-07-01T00:00Z", 4),
        ["2024-07-01T08:10+00:00", "2024-07-01T08:30+00:00", "2024-07-01T08:50+00:00", "2024-07-01T10:10+00:00"]
    );
    // `N/STEP` runs from N to the end of the field.
    assert_eq!(
        fires("45/10 * * * *", "UTC", "2024-07-01T00:00Z", 3),
        ["2024-07-01T00:45+00:00", "2024-07-01T00:55+00:00", "2024-07-01T01:45+00:00"]
    );
}

#[test]
fn sunday_is_zero_and_seven() {
    let (zero, seven, name) = (schedule("0 0 * * 0"), schedule("0 0 * * 7"), schedule("0 0 * * sun"));
    let mut after = at("2024-01-01T00:00Z");
    for _ in 0..60 {
        let next = zero.next_after(after, after, &TimeZone::UTC).unwrap();
        assert_eq!(seven.next_after(after, after, &TimeZone::UTC), Some(next));
        assert_eq!(name.next_after(after, after, &TimeZone::UTC), Some(next));
        assert_eq!(next.to_zoned(TimeZone::UTC).weekday(), jiff::civil::Weekday::Sunday);
        after = next;
    }
}

#[test]
fn weekly_is_sunday_midnight() {
    // 15 May 2024 is a Wednesday.
    assert_eq!(
        fires("@weekly", "Europe/Madrid", "2024-05-15T10:00+02:00", 2),
        ["2024-05-19T00:00+02:00", "2024-05-26T00:00+02:00"]
    );
    assert_eq!(fires("@monthly", "UTC", "2024-01-31T00:00Z", 2), ["2024-02-01T00:00+00:00", "2024-03-01T00:00+00:00"]);
    assert_eq!(fires("@yearly", "UTC", "2024-01-01T00:00Z", 2), ["2025-01-01T00:00+00:00", "2026-01-01T00:00+00:00"]);
    assert_eq!(fires("@midnight", "UTC", "2024-01-01T00:00Z", 1), ["2024-01-02T00:00+00:00"]);
}

#[test]
fn leap_day_waits_for_the_next_leap_year() {
    assert_eq!(
        fires("0 0 29 2 *", "UTC", "2024-03-01T00:00Z", 3),
        ["2028-02-29T00:00+00:00", "2032-02-29T00:00+00:00", "2036-02-29T00:00+00:00"]
    );
    // 2100 is not a leap year.
    assert_eq!(fires("0 0 29 2 *", "UTC", "2096-03-01T00:00Z", 1), ["2104-02-29T00:00+00:00"]);
}

#[test]
fn month_ends() {
    assert_eq!(
        fires("0 0 31 * *", "UTC", "2024-01-31T12:00Z", 4),
        ["2024-03-31T00:00+00:00", "2024-05-31T00:00+00:00", "2024-07-31T00:00+00:00", "2024-08-31T00:00+00:00"]
    );
    assert_eq!(
        fires("0 0 30 * *", "UTC", "2023-01-30T12:00Z", 2),
        ["2023-03-30T00:00+00:00", "2023-04-30T00:00+00:00"]
    );
    assert_eq!(
        fires("0 0 28-31 2 *", "UTC", "2023-02-01T00:00Z", 2),
        ["2023-02-28T00:00+00:00", "2024-02-28T00:00+00:00"]
    );
}

#[test]
fn year_boundary() {
    assert_eq!(
        fires("59 23 31 12 *", "Europe/Madrid", "2024-12-31T23:58:30+01:00", 2),
        ["2024-12-31T23:59+01:00", "2025-12-31T23:59+01:00"]
    );
    assert_eq!(fires("0 0 1 1 *", "Asia/Kolkata", "2024-12-31T23:59:59.999+05:30", 1), ["2025-01-01T00:00+05:30"]);
    assert_eq!(
        fires("*/30 * * * *", "UTC", "2024-12-31T23:15Z", 3),
        ["2024-12-31T23:30+00:00", "2025-01-01T00:00+00:00", "2025-01-01T00:30+00:00"]
    );
}

#[test]
fn exactly_on_a_fire_time_gives_the_following_one() {
    let (s, tz) = (schedule("30 3 * * *"), zone("Europe/Madrid"));
    let on = at("2024-06-01T03:30+02:00");
    assert_eq!(show(s.next_after(on, on, &tz).unwrap(), &tz), "2024-06-02T03:30+02:00");
    let just_before = Timestamp::from_nanosecond(on.as_nanosecond() - 1).unwrap();
    assert_eq!(s.next_after(just_before, on, &tz), Some(on));
    let (every, anchor) = (schedule("every 1h"), at("2024-06-01T00:00Z"));
    assert_eq!(every.next_after(at("2024-06-01T05:00Z"), anchor, &tz), Some(at("2024-06-01T06:00Z")));
}

#[test]
fn intervals_follow_their_anchor_not_the_clock() {
    let s = schedule("every 90m");
    let tz = TimeZone::UTC;
    let anchor = at("2024-06-01T00:07:13Z");
    // Anchor in the past: the next point on its grid.
    assert_eq!(s.next_after(at("2024-06-01T10:00Z"), anchor, &tz), Some(at("2024-06-01T10:37:13Z")));
    assert_eq!(s.next_after(anchor, anchor, &tz), Some(at("2024-06-01T01:37:13Z")));
    // Anchor in the future (clock stepped back): one interval after it.
    assert_eq!(s.next_after(at("2024-05-31T00:00Z"), anchor, &tz), Some(at("2024-06-01T01:37:13Z")));
    assert_eq!(schedule("every 2s").next_after(anchor, anchor, &tz), Some(at("2024-06-01T00:07:15Z")));
    assert!(s.is_interval());
    assert!(!schedule("@daily").is_interval());
}

#[test]
fn cron_ignores_the_anchor() {
    let (s, tz) = (schedule("0 3 * * *"), TimeZone::UTC);
    let after = at("2024-06-01T12:00Z");
    let expected = Some(at("2024-06-02T03:00Z"));
    for anchor in [Timestamp::MIN, after, at("2030-01-01T00:00Z")] {
        assert_eq!(s.next_after(after, anchor, &tz), expected);
    }
}

#[test]
fn none_only_when_nothing_matches_within_ten_years() {
    // Feb 29 that is a Sunday (`*/7` is 0 and 7): 2004, then 2032.
    let s = schedule("0 0 29 2 */7");
    assert_eq!(s.next_after(at("2005-01-01T00:00Z"), at("2005-01-01T00:00Z"), &TimeZone::UTC), None);
    assert_eq!(
        s.next_after(at("2025-01-01T00:00Z"), at("2025-01-01T00:00Z"), &TimeZone::UTC),
        Some(at("2032-02-29T00:00Z"))
    );
    // The end of jiff's calendar.
    assert_eq!(schedule("@yearly").next_after(Timestamp::MAX, Timestamp::MAX, &TimeZone::UTC), None);
}

#[test]
fn text_is_kept_as_written() {
    for text in ["0 3 * * *", "@Daily", "every   6h", " 0  3 * * MON "] {
        let s: Schedule = text.parse().unwrap();
        assert_eq!(s.as_str(), text);
        assert_eq!(s.to_string(), text);
    }
    assert_eq!(schedule("0 3 * * *"), schedule("0 3 * * *"));
    assert_ne!(schedule("0 3 * * 0"), schedule("0 3 * * 7"));
}
