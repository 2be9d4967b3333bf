//! The nights the clocks change, in zones that change them differently.
//!
//! Transitions used (2024): Europe/Madrid 31 Mar 02:00→03:00, 27 Oct
//! 03:00→02:00; America/New_York 10 Mar 02:00→03:00, 3 Nov 02:00→01:00;
//! Australia/Lord_Howe 7 Apr 02:00→01:30, 6 Oct 02:00→02:30 (half an hour);
//! Australia/Sydney 7 Apr 03:00→02:00, 6 Oct 02:00→03:00; America/Santiago
//! 7 Apr 00:00→23:00 (the day before), 8 Sep 00:00→01:00 (no midnight).

mod common;

use std::collections::HashSet;

use common::{at, fires, fires_until, schedule, show, zone};
use orchestrator_schedule::Timestamp;

/// Real time between consecutive fires, in minutes.
fn spacing(times: &[Timestamp]) -> Vec<i64> {
    times.windows(2).map(|w| (w[1].as_second() - w[0].as_second()) / 60).collect()
}

/// Fires are strictly increasing and no wall-clock time repeats.
fn assert_once_each(times: &[Timestamp], tz: &orchestrator_schedule::TimeZone) {
    assert!(times.windows(2).all(|w| w[0] < w[1]), "not strictly increasing");
    let mut seen = HashSet::new();
    for &t in times {
        let wall = t.to_zoned(tz.clone()).datetime();
        assert!(seen.insert(wall), "wall-clock {wall} fired twice");
    }
}

#[test]
fn madrid_hourly_spring_forward_fires_once_at_three() {
    assert_eq!(
        fires("0 * * * *", "Europe/Madrid", "2024-03-31T00:30+01:00", 4),
        ["2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00", "2024-03-31T04:00+02:00", "2024-03-31T05:00+02:00"]
    );
}

#[test]
fn madrid_hourly_fall_back_does_not_repeat_two_oclock() {
    assert_eq!(
        fires("0 * * * *", "Europe/Madrid", "2024-10-27T00:30+02:00", 4),
        ["2024-10-27T01:00+02:00", "2024-10-27T02:00+02:00", "2024-10-27T03:00+01:00", "2024-10-27T04:00+01:00"]
    );
    // 02:00 CEST to 03:00 CET is two real hours: the second 02:00 is skipped.
    let tz = zone("Europe/Madrid");
    let times = fires_until("0 * * * *", &tz, at("2024-10-27T00:30+02:00"), at("2024-10-27T04:00+01:00"));
    assert_eq!(spacing(&times), [60, 120, 60]);
}

#[test]
fn madrid_daily_half_past_two_runs_once_on_both_nights() {
    assert_eq!(
        fires("30 2 * * *", "Europe/Madrid", "2024-03-30T12:00+01:00", 2),
        ["2024-03-31T03:30+02:00", "2024-04-01T02:30+02:00"]
    );
    assert_eq!(
        fires("30 2 * * *", "Europe/Madrid", "2024-10-26T12:00+02:00", 2),
        ["2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"]
    );
}

#[test]
fn madrid_quarter_hours_over_fall_back_never_repeat_a_wall_clock_time() {
    let tz = zone("Europe/Madrid");
    let times = fires_until("*/15 * * * *", &tz, at("2024-10-26T22:00+02:00"), at("2024-10-27T06:00+01:00"));
    assert_once_each(&times, &tz);
    // 22:15 to 06:00 on the wall clock, every quarter hour, each once.
    assert_eq!(times.len(), 32);
    assert_eq!(show(times[18], &tz), "2024-10-27T02:45+02:00");
    assert_eq!(show(times[19], &tz), "2024-10-27T03:00+01:00");
    // The repeated hour is the only long wait.
    let gaps = spacing(&times);
    assert_eq!(gaps.iter().filter(|&&m| m != 15).collect::<Vec<_>>(), [&75]);
}

#[test]
fn madrid_quarter_hours_over_spring_forward_skip_the_missing_hour() {
    let tz = zone("Europe/Madrid");
    let times = fires_until("*/15 * * * *", &tz, at("2024-03-31T01:00+01:00"), at("2024-03-31T04:00+02:00"));
    assert_once_each(&times, &tz);
    // 02:00-02:45 land on 03:00-03:45, which fire once each.
    let shown: Vec<String> = times.iter().map(|&t| show(t, &tz)).collect();
    assert_eq!(
        shown,
        [
            "2024-03-31T01:15+01:00",
            "2024-03-31T01:30+01:00",
            "2024-03-31T01:45+01:00",
            "2024-03-31T03:00+02:00",
            "2024-03-31T03:15+02:00",
            "2024-03-31T03:30+02:00",
            "2024-03-31T03:45+02:00",
            "2024-03-31T04:00+02:00",
        ]
    );
    assert!(spacing(&times).iter().all(|&m| m == 15));
}

#[test]
fn asking_from_inside_the_hour_after_spring_forward_still_runs_the_gap_job() {
    let (s, tz) = (schedule("30 2 * * *"), zone("Europe/Madrid"));
    // A daemon started at 03:10 CEST agrees with one running since Saturday.
    let next = s.next_after(at("2024-03-31T03:10+02:00"), at("2024-03-31T03:10+02:00"), &tz).unwrap();
    assert_eq!(show(next, &tz), "2024-03-31T03:30+02:00");
    let next = s.next_after(next, next, &tz).unwrap();
    assert_eq!(show(next, &tz), "2024-04-01T02:30+02:00");
}

#[test]
fn asking_from_the_second_pass_of_a_fold_skips_to_after_it() {
    assert_eq!(
        fires("*/15 * * * *", "Europe/Madrid", "2024-10-27T02:20+01:00", 2),
        ["2024-10-27T03:00+01:00", "2024-10-27T03:15+01:00"]
    );
    // From inside the first pass, its times run.
    assert_eq!(
        fires("*/15 * * * *", "Europe/Madrid", "2024-10-27T02:20+02:00", 3),
        ["2024-10-27T02:30+02:00", "2024-10-27T02:45+02:00", "2024-10-27T03:00+01:00"]
    );
}

#[test]
fn every_six_hours_ignores_dst() {
    let (s, tz) = (schedule("every 6h"), zone("Europe/Madrid"));
    for anchor in ["2024-03-30T21:00+01:00", "2024-10-26T21:00+02:00"] {
        let anchor = at(anchor);
        let mut after = anchor;
        let mut times = Vec::new();
        for _ in 0..8 {
            after = s.next_after(after, anchor, &tz).unwrap();
            times.push(after);
        }
        assert!(spacing(&times).iter().all(|&m| m == 360), "{anchor}");
        assert_eq!(times[0].as_second() - anchor.as_second(), 6 * 3600);
    }
    // Across spring forward the wall clock shows the jump: 21:00, 03:00 is 04:00.
    let anchor = at("2024-03-30T21:00+01:00");
    assert_eq!(show(s.next_after(anchor, anchor, &tz).unwrap(), &tz), "2024-03-31T04:00+02:00");
}

#[test]
fn new_york_changes_at_two_in_the_morning() {
    assert_eq!(
        fires("0 * * * *", "America/New_York", "2024-03-10T00:30-05:00", 3),
        ["2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"]
    );
    assert_eq!(
        fires("0 * * * *", "America/New_York", "2024-11-03T00:30-04:00", 3),
        ["2024-11-03T01:00-04:00", "2024-11-03T02:00-05:00", "2024-11-03T03:00-05:00"]
    );
    // The fold is 01:00-02:00: a 01:30 job runs in the first pass only.
    assert_eq!(
        fires("30 1 * * *", "America/New_York", "2024-11-02T12:00-04:00", 2),
        ["2024-11-03T01:30-04:00", "2024-11-04T01:30-05:00"]
    );
    assert_eq!(
        fires("30 2 * * *", "America/New_York", "2024-03-09T12:00-05:00", 2),
        ["2024-03-10T03:30-04:00", "2024-03-11T02:30-04:00"]
    );
}

#[test]
fn lord_howe_shifts_by_half_an_hour() {
    // Spring forward 02:00 -> 02:30: the 02:00 job lands on 02:30.
    assert_eq!(
        fires("0 * * * *", "Australia/Lord_Howe", "2024-10-06T00:30+10:30", 3),
        ["2024-10-06T01:00+10:30", "2024-10-06T02:30+11:00", "2024-10-06T03:00+11:00"]
    );
    let tz = zone("Australia/Lord_Howe");
    let times = fires_until("*/15 * * * *", &tz, at("2024-10-06T01:30+10:30"), at("2024-10-06T03:00+11:00"));
    assert_once_each(&times, &tz);
    let shown: Vec<String> = times.iter().map(|&t| show(t, &tz)).collect();
    assert_eq!(
        shown,
        ["2024-10-06T01:45+10:30", "2024-10-06T02:30+11:00", "2024-10-06T02:45+11:00", "2024-10-06T03:00+11:00"]
    );
    // Fall back 02:00 -> 01:30: the half hour 01:30-02:00 runs once.
    let times = fires_until("*/15 * * * *", &tz, at("2024-04-07T00:50+11:00"), at("2024-04-07T02:30+10:30"));
    assert_once_each(&times, &tz);
    let shown: Vec<String> = times.iter().map(|&t| show(t, &tz)).collect();
    assert_eq!(
        shown,
        [
            "2024-04-07T01:00+11:00",
            "2024-04-07T01:15+11:00",
            "2024-04-07T01:30+11:00",
            "2024-04-07T01:45+11:00",
            "2024-04-07T02:00+10:30",
            "2024-04-07T02:15+10:30",
            "2024-04-07T02:30+10:30",
        ]
    );
    assert_eq!(spacing(&times), [15, 15, 15, 45, 15, 15]);
}

#[test]
fn a_gap_time_that_lands_past_a_later_time_fires_in_instant_order() {
    // In the half-hour gap 02:20 lands on 02:50, after the real 02:40: both
    // run, earliest first, instead of 02:40 being passed over.
    assert_eq!(
        fires("20,40 * * * *", "Australia/Lord_Howe", "2024-10-06T01:50+10:30", 3),
        ["2024-10-06T02:40+11:00", "2024-10-06T02:50+11:00", "2024-10-06T03:20+11:00"]
    );
}

#[test]
fn kolkata_has_no_dst_and_a_half_hour_offset() {
    let tz = zone("Asia/Kolkata");
    assert_eq!(fires("30 2 * * *", "Asia/Kolkata", "2024-03-30T00:00+05:30", 1), ["2024-03-30T02:30+05:30"]);
    let times = fires_until("30 2 * * *", &tz, at("2024-01-01T00:00+05:30"), at("2025-01-01T00:00+05:30"));
    assert_eq!(times.len(), 366);
    assert!(spacing(&times).iter().all(|&m| m == 24 * 60));
    assert_eq!(times[0], at("2023-12-31T21:00:00Z"));
}

#[test]
fn utc_days_are_all_one_length() {
    let tz = zone("UTC");
    let times = fires_until("0 3 * * *", &tz, at("2024-01-01T00:00Z"), at("2025-01-01T00:00Z"));
    assert_eq!(times.len(), 366);
    assert!(spacing(&times).iter().all(|&m| m == 24 * 60));
    assert_eq!(
        fires("@hourly", "UTC", "2024-03-31T00:59:59Z", 2),
        ["2024-03-31T01:00+00:00", "2024-03-31T02:00+00:00"]
    );
}

#[test]
fn sydney_changes_in_the_southern_spring_and_autumn() {
    // April is autumn: 03:00 AEDT -> 02:00 AEST, 02:00-03:00 twice.
    assert_eq!(
        fires("0 * * * *", "Australia/Sydney", "2024-04-07T00:30+11:00", 4),
        ["2024-04-07T01:00+11:00", "2024-04-07T02:00+11:00", "2024-04-07T03:00+10:00", "2024-04-07T04:00+10:00"]
    );
    // October is spring: 02:00 AEST -> 03:00 AEDT.
    assert_eq!(
        fires("30 2 * * *", "Australia/Sydney", "2024-10-05T12:00+10:00", 2),
        ["2024-10-06T03:30+11:00", "2024-10-07T02:30+11:00"]
    );
}

#[test]
fn santiago_skips_midnight_so_daily_runs_at_one() {
    assert_eq!(
        fires("@daily", "America/Santiago", "2024-09-07T12:00-04:00", 2),
        ["2024-09-08T01:00-03:00", "2024-09-09T00:00-03:00"]
    );
    // Autumn: 23:00-24:00 on 6 April happens twice; 23:30 runs once.
    assert_eq!(
        fires("30 23 * * *", "America/Santiago", "2024-04-06T12:00-03:00", 2),
        ["2024-04-06T23:30-03:00", "2024-04-07T23:30-04:00"]
    );
    assert_eq!(
        fires("@daily", "America/Santiago", "2024-04-06T12:00-03:00", 2),
        ["2024-04-07T00:00-04:00", "2024-04-08T00:00-04:00"]
    );
}

#[test]
fn a_year_of_five_minutes_in_madrid_fires_every_distinct_instant_once() {
    let tz = zone("Europe/Madrid");
    let times = fires_until("*/5 * * * *", &tz, at("2024-01-01T00:00+01:00"), at("2025-01-01T00:00+01:00"));
    assert_once_each(&times, &tz);
    // 366 days of 288, less the 12 of the missing hour (they land on 03:xx,
    // which fires anyway); the repeated hour fires once.
    assert_eq!(times.len(), 366 * 288 - 12);
    let gaps = spacing(&times);
    assert_eq!(gaps.iter().filter(|&&m| m != 5).collect::<Vec<_>>(), [&65]);
}
