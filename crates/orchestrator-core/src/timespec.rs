//! Points in time as duplicity users write them: `now`, an age (`2D`,
//! `1W3D`), an ISO 8601 date or date-time, or epoch seconds.

use jiff::{Timestamp, tz::TimeZone};

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Resolve `spec` to epoch seconds, relative to `now`.
pub fn parse(spec: &str, now: i64) -> Result<i64, String> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        return spec.parse().map_err(|_| format!("time `{spec}` is out of range"));
    }
    if let Ok(age) = orchestrator_config::parse_interval(spec) {
        return Ok(now - age.as_secs() as i64);
    }
    if let Ok(ts) = spec.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    // A date or date-time without an offset is local time, as duplicity reads it.
    let civil = spec
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| spec.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight())));
    if let Ok(dt) = civil
        && let Ok(zoned) = dt.to_zoned(TimeZone::system())
    {
        return Ok(zoned.timestamp().as_second());
    }
    Err(format!(
        "cannot read time `{spec}`: use now, an age like 2D or 1W, an ISO date like 2026-11-22 or \
         2026-11-22T10:30:00Z, or epoch seconds"
    ))
}

/// An age such as `26h`, `2D` or `1W` (`status --max-age`).
pub fn age(spec: &str) -> Result<std::time::Duration, String> {
    orchestrator_config::parse_interval(spec.trim())
}

/// Epoch seconds as an ISO 8601 UTC time, for output.
pub fn format(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicity_forms() {
        let now = 1_800_000_000;
        assert_eq!(parse("now", now).unwrap(), now);
        assert_eq!(parse("2D", now).unwrap(), now - 2 * 86400);
        assert_eq!(parse("1h30m", now).unwrap(), now - 5400);
        assert_eq!(parse("1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(parse("2023-11-14T22:13:20Z", now).unwrap(), 1_700_000_000);
        assert!(parse("2023-11-14", now).is_ok());
        assert!(parse("yesterday-ish", now).unwrap_err().contains("cannot read time"));
        assert_eq!(format(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
