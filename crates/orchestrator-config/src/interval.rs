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

/// A rate such as `10MiB/s`, `500KB/s` or `1GiB/s`, in bytes per second
/// (`K`, `M`, `G` are powers of 1000, `Ki`, `Mi`, `Gi` of 1024).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let bad = || format!("expected a rate such as \"10MiB/s\" or \"500KB/s\", found {s:?}");
    let amount = s.trim().strip_suffix("/s").ok_or_else(bad)?.trim();
    let digits = amount.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(amount.len());
    let (number, unit) = amount.split_at(digits);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let rate = number * scale;
    if !(1024.0..=1e13).contains(&rate) {
        return Err(format!("{s:?} is outside 1KiB/s to 10TB/s"));
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod rate_tests {
    use super::parse_rate;

    #[test]
    fn rates_take_decimal_and_binary_units() {
        assert_eq!(parse_rate("10MiB/s"), Ok(10 << 20));
        assert_eq!(parse_rate("500KB/s"), Ok(500_000));
        assert_eq!(parse_rate("1.5 GiB/s"), Ok(3 << 29));
        for bad in ["10MiB", "fast", "10Mb/s", "-1MB/s", "1B/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
