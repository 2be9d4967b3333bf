//! Durations (`10m`, `1h30m`, `2D`) and `every …` schedules on a fixed grid.
//!
//! Intervals are real time: `every 6h` is six hours of elapsed time whatever
//! the wall clock does, so DST never stretches or shrinks one.

use std::time::Duration;

use jiff::Timestamp;

use crate::ScheduleError;

/// Parse a duration like `10m`, `1h30m`, `90s`, `2D` (units s m h D/d W) —
/// used for `schedule_jitter`.
///
/// Units are case-sensitive because `m` is minutes: `M` (months) and `Y`
/// are refused rather than guessed, as their length varies. Surrounding
/// whitespace is ignored; `0s` is allowed (no jitter).
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    seconds(text.trim())
        .map(Duration::from_secs)
        .map_err(|problem| ScheduleError::BadDuration { text: text.to_string(), problem })
}

/// The interval of `every <interval>`: at least a second, since a zero grid
/// has no next point.
pub(crate) fn parse_every(text: &str, interval: &str) -> Result<Duration, ScheduleError> {
    let secs = seconds(interval).map_err(|problem| ScheduleError::BadInterval { text: text.to_string(), problem })?;
    if secs == 0 {
        return Err(ScheduleError::IntervalTooShort { text: text.to_string() });
    }
    Ok(Duration::from_secs(secs))
}

/// The smallest `anchor + k * every` (k >= 1) after `after`; `None` past the
/// year 9999.
pub(crate) fn next_on_grid(after: Timestamp, anchor: Timestamp, every: Duration) -> Option<Timestamp> {
    let step = i128::try_from(every.as_nanos()).ok().filter(|&step| step > 0)?;
    let since_anchor = after.as_nanosecond() - anchor.as_nanosecond();
    let k = (since_anchor.div_euclid(step) + 1).max(1);
    Timestamp::from_nanosecond(anchor.as_nanosecond().checked_add(k.checked_mul(step)?)?).ok()
}

/// Whole numbers each followed by a unit, concatenated; the total in
/// seconds, or what is wrong.
fn seconds(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("it is empty".to_string());
    }
    let too_long = || "it is too long".to_string();
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'D' | 'd' => 86_400,
            'W' => 7 * 86_400,
            _ => return Err(not_a_unit(c)),
        };
        if digits.is_empty() {
            return Err(format!("`{c}` has no number before it"));
        }
        let n: u64 = digits.parse().map_err(|_| too_long())?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(too_long)?;
    }
    if !digits.is_empty() {
        return Err(format!("the number `{digits}` has no unit"));
    }
    Ok(total)
}

/// Why `c` is not a unit, with the likely intent.
fn not_a_unit(c: char) -> String {
    let hint = match c {
        'M' | 'Y' | 'y' => " (months and years vary in length; use a cron expression such as `0 3 1 * *`)",
        'S' => " (seconds are `s`)",
        'H' => " (hours are `h`)",
        'w' => " (weeks are `W`)",
        '.' | ',' => " (write whole numbers, as in `1h30m`)",
        ' ' | '\t' => " (write the parts together, as in `1h30m`)",
        '-' | '+' => " (durations have no sign)",
        _ => "",
    };
    format!("`{c}` is not a unit{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}")).as_secs()
    }

    #[test]
    fn units_add_up() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("2D"), 2 * 86_400);
        assert_eq!(secs("2d"), 2 * 86_400);
        assert_eq!(secs("1W"), 7 * 86_400);
        assert_eq!(secs("1W2D3h4m5s"), 7 * 86_400 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("007m"), 420);
        assert_eq!(secs(" 10m "), 600);
    }

    #[test]
    fn mistakes_are_named() {
        let problem = |text: &str| match parse_duration(text) {
            Err(ScheduleError::BadDuration { problem, .. }) => problem,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(problem(""), "it is empty");
        assert_eq!(problem("10"), "the number `10` has no unit");
        assert_eq!(problem("1h30"), "the number `30` has no unit");
        assert_eq!(problem("h"), "`h` has no number before it");
        assert_eq!(problem("10x"), "`x` is not a unit");
        assert!(problem("1M").contains("months and years vary in length"));
        assert!(problem("1H").contains("hours are `h`"));
        assert!(problem("1w").contains("weeks are `W`"));
        assert!(problem("1.5h").contains("whole numbers"));
        assert!(problem("1h 30m").contains("together"));
        assert!(problem("-1h").contains("no sign"));
        assert_eq!(problem("99999999999999999999s"), "it is too long");
        assert_eq!(problem("9999999999999999999W"), "it is too long");
    }

    #[test]
    fn duration_messages_quote_the_text_and_show_the_form() {
        assert_eq!(
            parse_duration("10x").unwrap_err().to_string(),
            "`10x` is not a duration: `x` is not a unit; write whole numbers each followed by a unit s, m (minutes), \
             h, D or W, such as `90s`, `10m`, `1h30m` or `2D`"
        );
    }

    #[test]
    fn grid_points_follow_the_anchor() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let every = Duration::from_secs(100);
        // Anchor in the past: the next point of its grid.
        assert_eq!(next_on_grid(t(1_050), t(1_000), every), Some(t(1_100)));
        assert_eq!(next_on_grid(t(1_999), t(1_000), every), Some(t(2_000)));
        // Exactly on a point: the following one.
        assert_eq!(next_on_grid(t(2_000), t(1_000), every), Some(t(2_100)));
        assert_eq!(next_on_grid(t(1_000), t(1_000), every), Some(t(1_100)));
        // Anchor in the future: k >= 1, so one interval after it.
        assert_eq!(next_on_grid(t(500), t(1_000), every), Some(t(1_100)));
        assert_eq!(next_on_grid(t(-5_000), t(1_000), every), Some(t(1_100)));
        // Sub-second `after` still lands on the grid.
        let after = Timestamp::from_nanosecond(1_050_000_000_001).unwrap();
        assert_eq!(next_on_grid(after, t(1_000), every), Some(t(1_100)));
        // Past the end of time.
        assert_eq!(next_on_grid(Timestamp::MAX, Timestamp::MAX, every), None);
    }
}
