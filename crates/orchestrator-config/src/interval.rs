//! duplicity-style intervals: `30D`, `6h`, `1h30m`.

use std::time::Duration;

/// Parse an interval: integers each followed by a unit `s`, `m` (minutes),
/// `h`, `D`, `W`, `M` (30 days) or `Y` (365 days), concatenated.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not an interval (examples: 90s, 10m, 6h, 30D, 2W, 6M, 1Y, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'D' => 86_400,
            'W' => 7 * 86_400,
            'M' => 30 * 86_400,
            'Y' => 365 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations() {
        assert_eq!(parse_interval("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_interval("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_interval("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_interval("30D").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_interval("2W").unwrap().as_secs(), 14 * 86400);
        assert_eq!(parse_interval("1M").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_interval("1Y").unwrap().as_secs(), 365 * 86400);
        assert_eq!(parse_interval("1D12h").unwrap().as_secs(), 36 * 3600);
        assert_eq!(parse_interval("1h78m").unwrap().as_secs(), 3600 + 78 * 60);
        assert_eq!(parse_interval("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_interval("007m").unwrap().as_secs(), 420);
    }

    #[test]
    fn rejects_anything_else() {
        for bad in
            ["", "10", "m", "10x", "1.5h", "-1h", "+1h", "1h30", "1h 30m", " 1h", "1d", "1H", "99999999999999999999s"]
        {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
