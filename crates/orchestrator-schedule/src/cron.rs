//! Five-field cron expressions: parsing, the never-runs check, and the search
//! for the next matching wall-clock minute.
//!
//! Each field becomes a bit set, so the search jumps straight to the next
//! allowed month, day, hour and minute instead of stepping a minute at a
//! time: a `@yearly` next is a handful of bit operations, whatever the gap.
//! The search knows nothing of time zones; `zone` turns its civil date-times
//! into instants.

use jiff::civil::DateTime;

use crate::ScheduleError;

/// One field's name, bounds and names, for parsing and for messages.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// What to tell a person the field takes.
    range: &'static str,
    /// Three-letter names; the first is worth `min`.
    names: &'static [&'static str],
}

const MINUTE: Field = Field { name: "minute", min: 0, max: 59, range: "0-59", names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, range: "0-23", names: &[] };
const DAY: Field = Field { name: "day-of-month", min: 1, max: 31, range: "1-31", names: &[] };
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    range: "1-12 or JAN-DEC",
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/// 0-7 because both 0 and 7 mean Sunday (Vixie cron); 7 is folded into 0.
const WEEKDAY: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    range: "0-7 or SUN-SAT",
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A parsed cron expression: one bit per allowed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    minutes: u64,
    hours: u64,
    /// Bits 1-31.
    days: u64,
    /// Bits 1-12.
    months: u64,
    /// Bits 0-6, Sunday = 0.
    weekdays: u64,
    /// Vixie cron: when both day fields are restricted (neither starts with
    /// `*`), a day matching either runs; otherwise it must match both.
    either_day: bool,
}

impl Cron {
    /// Parse `m h dom mon dow`; `text` is the whole schedule, for messages.
    pub(crate) fn parse(text: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(ScheduleError::FieldCount { text: text.to_string(), found: fields.len() });
        };
        let mut weekdays = parse_field(text, weekday, &WEEKDAY)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        let cron = Cron {
            minutes: parse_field(text, minute, &MINUTE)?,
            hours: parse_field(text, hour, &HOUR)?,
            days: parse_field(text, day, &DAY)?,
            months: parse_field(text, month, &MONTH)?,
            weekdays,
            either_day: !day.starts_with('*') && !weekday.starts_with('*'),
        };
        cron.check_runs(text)?;
        Ok(cron)
    }

    /// Refuse a day-of-month that none of the chosen months has: a daemon
    /// would otherwise wait forever without saying why. Only needed when the
    /// day must match day-of-month (with the "either" rule, the weekdays
    /// alone give days), and only the month lengths matter: over the years
    /// every date falls on every weekday.
    fn check_runs(&self, text: &str) -> Result<(), ScheduleError> {
        if self.either_day {
            return Ok(());
        }
        let runs = (1..=12u32).filter(|m| self.months & (1 << m) != 0).any(|m| {
            // 29 for February: `0 0 29 2 *` runs in leap years.
            let longest = if m == 2 { 29 } else { days_in_month(2001, m) };
            self.days & bits(1, longest) != 0
        });
        if runs {
            return Ok(());
        }
        let months: Vec<&str> =
            (1..=12usize).filter(|&m| self.months & (1 << m) != 0).map(|m| MONTH_NAMES[m - 1]).collect();
        let days: Vec<String> = (1..=31u32).filter(|d| self.days & (1 << d) != 0).map(|d| d.to_string()).collect();
        let has = if months.len() == 1 { "has" } else { "have" };
        let reason = format!("{} {has} no day {}", join(&months, "and"), join(&days, "or"));
        Err(ScheduleError::NeverRuns { text: text.to_string(), reason })
    }

    /// The first minute at or after `from` (rounded up to a whole minute)
    /// that matches, no later than the end of `last_year`.
    pub(crate) fn next_from(&self, from: DateTime, last_year: i16) -> Option<DateTime> {
        let mut year = from.year();
        let (mut month, mut day) = (from.month() as u32, from.day() as u32);
        let (mut hour, mut minute) = (from.hour() as u32, from.minute() as u32);
        if from.second() != 0 || from.subsec_nanosecond() != 0 {
            minute += 1;
        }
        // Each step either returns or moves to the start of a later unit
        // (an overflowing value such as minute 60 finds no bit and carries).
        loop {
            if year > last_year {
                return None;
            }
            let Some(m) = next_bit(self.months, month) else {
                (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0);
                continue;
            };
            if m != month {
                (month, day, hour, minute) = (m, 1, 0, 0);
            }
            let Some(d) = next_bit(self.day_mask(year, month), day) else {
                (month, day, hour, minute) = (month + 1, 1, 0, 0);
                continue;
            };
            if d != day {
                (day, hour, minute) = (d, 0, 0);
            }
            let Some(h) = next_bit(self.hours, hour) else {
                (day, hour, minute) = (day + 1, 0, 0);
                continue;
            };
            if h != hour {
                (hour, minute) = (h, 0);
            }
            let Some(mi) = next_bit(self.minutes, minute) else {
                (hour, minute) = (hour + 1, 0);
                continue;
            };
            // All values are in range here, so the conversions cannot truncate.
            return DateTime::new(year, month as i8, day as i8, hour as i8, mi as i8, 0, 0).ok();
        }
    }

    /// The days of `month` that match (bits 1-31), weekdays resolved
    /// against that month's calendar.
    fn day_mask(&self, year: i16, month: u32) -> u64 {
        let length = days_in_month(year, month);
        let first = weekday(year, month, 1);
        let mut by_weekday: u64 = 0;
        for wd in (0..7).filter(|wd| self.weekdays & (1 << wd) != 0) {
            let mut d = 1 + (wd + 7 - first) % 7;
            while d <= length {
                by_weekday |= 1 << d;
                d += 7;
            }
        }
        let by_day = self.days & bits(1, length);
        if self.either_day { by_day | by_weekday } else { by_day & by_weekday }
    }
}

/// Parse one field (`1,5-10,*/15`) into its bit set.
fn parse_field(text: &str, field_text: &str, field: &Field) -> Result<u64, ScheduleError> {
    let mut set = 0;
    for item in field_text.split(',') {
        set |= parse_item(text, item, field)?;
    }
    Ok(set)
}

/// One list item: `*`, `N`, `A-B`, each with an optional `/STEP`.
fn parse_item(text: &str, item: &str, field: &Field) -> Result<u64, ScheduleError> {
    let bad_item = || ScheduleError::BadItem {
        text: text.to_string(),
        field: field.name,
        item: item.to_string(),
        range: field.range,
    };
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    let stepped = step.is_some();
    let step = match step {
        None => 1,
        Some(step) => match number(step) {
            Some(Some(n)) if n >= 1 => n,
            _ => {
                return Err(ScheduleError::BadStep {
                    text: text.to_string(),
                    field: field.name,
                    item: item.to_string(),
                });
            }
        },
    };
    let (low, high) = if base == "*" {
        (field.min, field.max)
    } else if let Some((a, b)) = base.split_once('-') {
        let low = value(text, a, field)?.ok_or_else(bad_item)?;
        // `FRI-SUN`: Sunday at the end of a range is 7, so the range runs forward.
        let high = if field.name == WEEKDAY.name && b.eq_ignore_ascii_case("SUN") {
            7
        } else {
            value(text, b, field)?.ok_or_else(bad_item)?
        };
        if low > high {
            return Err(ScheduleError::Backwards { text: text.to_string(), field: field.name, item: base.to_string() });
        }
        (low, high)
    } else {
        let v = value(text, base, field)?.ok_or_else(bad_item)?;
        // `N/STEP` is POSIX shorthand for `N-max/STEP`.
        if stepped { (v, field.max) } else { (v, v) }
    };
    Ok((low..=high).step_by(step as usize).fold(0, |set, v| set | (1 << v)))
}

/// A number or name within the field's range; `Ok(None)` when it is neither
/// (the caller reports the whole item).
fn value(text: &str, written: &str, field: &Field) -> Result<Option<u32>, ScheduleError> {
    let out_of_range = || ScheduleError::OutOfRange {
        text: text.to_string(),
        field: field.name,
        value: written.to_string(),
        range: field.range,
    };
    match number(written) {
        Some(Some(n)) if (field.min..=field.max).contains(&n) => Ok(Some(n)),
        Some(_) => Err(out_of_range()),
        None => {
            Ok(field.names.iter().position(|name| name.eq_ignore_ascii_case(written)).map(|i| field.min + i as u32))
        }
    }
}

/// `None` when not all digits; `Some(None)` when all digits but too large.
fn number(written: &str) -> Option<Option<u32>> {
    if written.is_empty() || !written.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(written.parse().ok())
}

/// The lowest set bit at or above `from`.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    let above = set.checked_shr(from)?.checked_shl(from)?;
    (above != 0).then(|| above.trailing_zeros())
}

/// Bits `low..=high`.
fn bits(low: u32, high: u32) -> u64 {
    (u64::MAX >> (63 - high)) & (u64::MAX << low)
}

fn is_leap(year: i16) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i16, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week, Sunday = 0 (days since 1970-01-01, a Thursday; Howard
/// Hinnant's `days_from_civil`). Ours rather than jiff's to stay infallible
/// and cheap inside the search loop.
fn weekday(year: i16, month: u32, day: u32) -> u32 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days + 4).rem_euclid(7) as u32
}

/// `a`, `a and b`, `a, b and c`.
fn join<S: AsRef<str>>(items: &[S], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} {conjunction} {}", rest.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Date, date};

    fn cron(text: &str) -> Cron {
        Cron::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn set(values: &[u32]) -> u64 {
        values.iter().fold(0, |s, v| s | (1 << v))
    }

    fn next(text: &str, from: DateTime) -> DateTime {
        cron(text).next_from(from, from.year() + 10).unwrap()
    }

    #[test]
    fn fields_take_values_ranges_lists_and_steps() {
        let c = cron("*/15 9-17/2 1,15,31 JAN-mar,dec sun");
        assert_eq!(c.minutes, set(&[0, 15, 30, 45]));
        assert_eq!(c.hours, set(&[9, 11, 13, 15, 17]));
        assert_eq!(c.days, set(&[1, 15, 31]));
        assert_eq!(c.months, set(&[1, 2, 3, 12]));
        assert_eq!(c.weekdays, set(&[0]));
        assert!(c.either_day);
        assert_eq!(cron("5/20 * * * *").minutes, set(&[5, 25, 45]));
        assert_eq!(cron("7 * * * *").minutes, set(&[7]));
        assert_eq!(cron("0-59 * * * *").minutes, u64::MAX >> 4);
        assert_eq!(cron("0 0 */10 * *").days, set(&[1, 11, 21, 31]));
        assert_eq!(cron("0 0 * 2/5 *").months, set(&[2, 7, 12]));
        assert_eq!(cron("0 0 * * MON-FRI").weekdays, set(&[1, 2, 3, 4, 5]));
        assert_eq!(cron("0 0 * * FRI-SUN").weekdays, set(&[0, 5, 6]));
        assert_eq!(cron("0 0 * * 5-7").weekdays, set(&[0, 5, 6]));
        assert_eq!(cron("0 0 * * */2").weekdays, set(&[0, 2, 4, 6]));
        assert_eq!(cron("0 0 * * 07").weekdays, set(&[0]));
        assert_eq!(cron("0 0 * * 0").weekdays, cron("0 0 * * 7").weekdays);
        assert_eq!(cron("*/59 * * * *").minutes, set(&[0, 59]));
        assert_eq!(cron("*/100 * * * *").minutes, set(&[0]));
    }

    #[test]
    fn the_either_rule_needs_both_day_fields_restricted() {
        assert!(cron("0 0 1 * MON").either_day);
        assert!(!cron("0 0 * * MON").either_day);
        assert!(!cron("0 0 1 * *").either_day);
        // Vixie looks at the first character: `*/2` counts as unrestricted.
        assert!(!cron("0 0 */2 * MON").either_day);
        assert!(!cron("0 0 1 * */2").either_day);
    }

    #[test]
    fn search_skips_straight_to_the_next_match() {
        let at = |y, mo, d, h, mi| date(y, mo, d).at(h, mi, 0, 0);
        assert_eq!(next("30 3 * * *", at(2024, 5, 1, 3, 30)), at(2024, 5, 1, 3, 30));
        assert_eq!(next("30 3 * * *", at(2024, 5, 1, 3, 31)), at(2024, 5, 2, 3, 30));
        assert_eq!(next("0 0 1 1 *", at(2024, 1, 1, 0, 1)), at(2025, 1, 1, 0, 0));
        assert_eq!(next("59 23 31 12 *", at(2024, 1, 1, 0, 0)), at(2024, 12, 31, 23, 59));
        // Seconds round up to the next whole minute.
        assert_eq!(next("* * * * *", date(2024, 12, 31).at(23, 59, 0, 1)), at(2025, 1, 1, 0, 0));
        // Month ends: the 31st skips the 30-day months.
        assert_eq!(next("0 0 31 * *", at(2024, 3, 31, 0, 1)), at(2024, 5, 31, 0, 0));
        assert_eq!(next("0 0 30 * *", at(2023, 1, 31, 0, 0)), at(2023, 3, 30, 0, 0));
        assert_eq!(next("0 0 29 2 *", at(2024, 2, 29, 0, 1)), at(2028, 2, 29, 0, 0));
        // Hour and minute carry into the next day and month.
        assert_eq!(next("0 12 * * *", at(2024, 1, 31, 12, 1)), at(2024, 2, 1, 12, 0));
    }

    #[test]
    fn search_gives_up_after_the_last_year() {
        let c = cron("0 0 29 2 *");
        let from = date(2097, 3, 1).at(0, 0, 0, 0);
        // 2100 is not a leap year: the next Feb 29 after 2096 is in 2104.
        assert_eq!(c.next_from(from, 2103), None);
        assert_eq!(c.next_from(from, 2104), Some(date(2104, 2, 29).at(0, 0, 0, 0)));
        assert_eq!(cron("* * * * *").next_from(date(9999, 12, 31).at(23, 59, 0, 1), 9999), None);
    }

    #[test]
    fn weekday_matches_jiff_for_four_centuries() {
        let mut d = Date::new(1900, 1, 1).unwrap();
        while d.year() < 2300 {
            let ours = weekday(d.year(), d.month() as u32, d.day() as u32);
            assert_eq!(ours as i8, d.weekday().to_sunday_zero_offset(), "{d}");
            d = d.tomorrow().unwrap();
        }
    }

    #[test]
    fn bits_and_next_bit() {
        assert_eq!(bits(1, 31), 0xFFFF_FFFE);
        assert_eq!(bits(0, 63), u64::MAX);
        assert_eq!(next_bit(set(&[3, 9]), 4), Some(9));
        assert_eq!(next_bit(set(&[3, 9]), 10), None);
        assert_eq!(next_bit(u64::MAX, 64), None);
        assert_eq!(next_bit(u64::MAX, 200), None);
    }

    #[test]
    fn joins_read_as_english() {
        assert_eq!(join(&["February"], "and"), "February");
        assert_eq!(join(&["30", "31"], "or"), "30 or 31");
        assert_eq!(join(&["April", "June", "September"], "and"), "April, June and September");
    }
}
