//! The TrueNAS version string, as `system.version` gives it.

use std::fmt;

/// A TrueNAS version: the text the NAS gave and its release line
/// (`major.minor`, e.g. 25.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub text: String,
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// Reads `TrueNAS-25.10.0`, `TrueNAS-SCALE-24.10.2.1`, `25.04.2`, ...: the
    /// first `N.N` in the text.
    pub fn parse(text: &str) -> Option<Version> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|token| {
            let mut parts = token.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some(Version { text: text.to_owned(), major, minor })
        })
    }

    /// Whether this is release line `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_truenas_uses() {
        let v = Version::parse("TrueNAS-SCALE-24.10.2.1").unwrap();
        assert_eq!((v.major, v.minor), (24, 10));
        let v = Version::parse("TrueNAS-25.04.2").unwrap();
        assert_eq!((v.major, v.minor), (25, 4));
        assert!(!v.at_least(25, 10));
        let v = Version::parse("TrueNAS-25.10.0").unwrap();
        assert!(v.at_least(25, 10));
        assert!(Version::parse("25.10.1").unwrap().at_least(25, 10));
        assert!(Version::parse("TrueNAS-26.0.0-BETA.1").unwrap().at_least(25, 10));
        assert_eq!(Version::parse("TrueNAS-MASTER"), None);
    }
}
