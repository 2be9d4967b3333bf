//! IMAP's INTERNALDATE (`date-time` in RFC 3501 §9): `"17-Jul-1996 02:44:25 -0700"`.
//!
//! A message's internal date is when the server received it; clients sort by
//! it, so a restore must put it back. The zone matters: the same instant is
//! written with the server's offset, so it is applied before comparing.

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The `date-time` for APPEND, in UTC: the instant is what must survive.
/// `None` for instants outside the four-digit years IMAP can express.
pub fn format(seconds: i64) -> Option<String> {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{day:02}-{}-{year:04} {:02}:{:02}:{:02} +0000",
        MONTHS[month as usize - 1],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

/// Seconds since the epoch of a server's `date-time`, the zone applied.
/// Accepts the space-padded day (`" 1-Jan-2024 ..."`) servers send.
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (date, rest) = text.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut date_parts = date.splitn(3, '-');
    let day: u32 = date_parts.next()?.parse().ok()?;
    let month_name = date_parts.next()?;
    let year_text = date_parts.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month_name))? as u32 + 1;
    if year_text.len() != 4 || !year_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year_text.parse().ok()?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut time_parts = time.splitn(3, ':');
    let mut field = |max: i64| -> Option<i64> {
        let t = time_parts.next()?;
        let v: i64 = if t.len() == 2 { t.parse().ok()? } else { return None };
        (v <= max).then_some(v)
    };
    let (h, m, s) = (field(23)?, field(59)?, field(60)?);
    let zone = zone.trim_end().as_bytes();
    if zone.len() != 5 || !zone[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sign = match zone[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| i64::from(zone[i] - b'0');
    let offset = sign * ((digit(1) * 10 + digit(2)) * 3600 + (digit(3) * 10 + digit(4)) * 60);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_is_applied() {
        // RFC 3501's example: 1996-07-17 09:44:25 UTC.
        assert_eq!(parse("17-Jul-1996 02:44:25 -0700"), Some(837_596_665));
        assert_eq!(parse("17-Jul-1996 11:44:25 +0200"), Some(837_596_665));
        assert_eq!(parse("17-Jul-1996 09:44:25 +0000"), Some(837_596_665));
        assert_eq!(parse("01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(parse(" 1-Jan-1970 01:00:00 +0100"), Some(0));
        assert_eq!(parse("31-Dec-1969 23:59:59 +0000"), Some(-1));
        assert_eq!(parse("29-Feb-2024 12:00:00 +0530"), Some(1_709_188_200));
    }

    #[test]
    fn format_round_trips() {
        for t in [0, -1, 837_596_665, 1_709_188_200, 253_402_300_799, -62_167_219_200] {
            let text = format(t).unwrap();
            assert_eq!(parse(&text), Some(t), "{text}");
        }
        assert_eq!(format(837_596_665).unwrap(), "17-Jul-1996 09:44:25 +0000");
        assert_eq!(format(253_402_300_800), None);
        assert_eq!(format(-62_167_219_201), None);
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "",
            "17-Jul-1996",
            "17-Jux-1996 02:44:25 -0700",
            "30-Feb-2024 02:44:25 -0700",
            "17-Jul-96 02:44:25 -0700",
            "17-Jul-1996 24:00:00 -0700",
            "17-Jul-1996 2:44:25 -0700",
            "17-Jul-1996 02:44:25 0700",
            "17-Jul-1996 02:44:25 -07:00",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
