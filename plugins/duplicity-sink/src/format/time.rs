//! duplicity's time strings: `YYYYMMDDTHHMMSSZ` (UTC, whole seconds), and the
//! old W3C form `YYYY-MM-DDTHH:MM:SS±HH:MM` that old archives carry.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))`.
pub fn to_string(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn checked(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let valid =
        (1901..=2099).contains(&y) && (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61;
    valid.then(|| days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parse a time string as duplicity does: 16 characters are the current form
/// (UTC); longer ones the old W3C form with an offset. The year must lie in
/// 1901..=2099, or the name is not duplicity's.
pub fn parse(s: &str) -> Option<i64> {
    if s.len() == 16 {
        let b = s.as_bytes();
        if b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        return checked(
            num(&s[0..4])?,
            num(&s[4..6])?,
            num(&s[6..8])?,
            num(&s[9..11])?,
            num(&s[11..13])?,
            num(&s[13..15])?,
        );
    }
    // 2002-08-17T16:17:01-07:00 (or Z)
    if s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let (main, zone) = s.split_at(19);
    let p: Vec<&str> = main.split(['-', 'T', ':']).collect();
    if p.len() != 6 {
        return None;
    }
    let local = checked(num(p[0])?, num(p[1])?, num(p[2])?, num(p[3])?, num(p[4])?, num(p[5])?)?;
    let offset = match zone {
        "Z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let secs = num(&z[1..3])? * 3600 + num(&z[4..6])? * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_form_round_trips() {
        assert_eq!(to_string(0), "19700101T000000Z");
        assert_eq!(to_string(1_795_345_878), "20261122T111118Z");
        assert_eq!(parse("20261122T111118Z"), Some(1_795_345_878));
        for t in [-2_000_000_000i64, 951_782_400, 1_700_000_000, 4_000_000_000] {
            assert_eq!(parse(&to_string(t)), Some(t), "{t}");
        }
        assert_eq!(parse("21000101T000000Z"), None, "year outside 1901..2099");
        assert_eq!(parse("2026112XT111118Z"), None);
    }

    #[test]
    fn old_w3c_form_with_offsets() {
        // From duplicity's collectionstest corpus.
        assert_eq!(parse("2002-08-17T16:17:01-07:00"), Some(1_029_626_221));
        assert_eq!(parse("2002-08-17T23:17:01Z"), Some(1_029_626_221));
        assert_eq!(parse("2002-08-18T01:17:01+02:00"), Some(1_029_626_221));
        assert_eq!(parse("2002-08-17T16:17:01"), None);
    }
}
