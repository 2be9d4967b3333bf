//! The search jumps over non-matching months, days and hours; a minute-by-
//! minute scan would take milliseconds per call for yearly schedules.
//! Bounds are generous for loaded machines, far below what a scan needs.

mod common;

use std::time::{Duration, Instant};

use common::{at, schedule, zone};

#[test]
fn ten_thousand_five_minute_steps_take_milliseconds() {
    let (s, tz) = (schedule("*/5 * * * *"), zone("Europe/Madrid"));
    let start = Instant::now();
    let mut after = at("2024-01-01T00:00+01:00");
    for _ in 0..10_000 {
        after = s.next_after(after, after, &tz).unwrap();
    }
    let took = start.elapsed();
    eprintln!("10,000 steps of */5: {took:?}");
    assert_eq!(after, at("2024-02-04T17:20+01:00"));
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn rare_schedules_are_computed_in_microseconds() {
    let tz = zone("America/New_York");
    for (text, from) in [
        ("@yearly", "2024-01-01T00:00:01-05:00"),
        ("59 23 31 12 *", "2024-01-01T00:00-05:00"),
        ("0 0 29 2 *", "2096-03-01T00:00-05:00"),
        ("0 0 31 4,6,9,11,12 *", "2024-01-01T00:00-05:00"),
    ] {
        let s = schedule(text);
        let after = at(from);
        let start = Instant::now();
        for _ in 0..1_000 {
            std::hint::black_box(s.next_after(std::hint::black_box(after), after, &tz).unwrap());
        }
        let each = start.elapsed() / 1_000;
        eprintln!("{text}: {each:?} per next_after");
        assert!(each < Duration::from_micros(100), "{text}: {each:?}");
    }
}
