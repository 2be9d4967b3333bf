//! Remote file names: duplicity's long names (`duplicity-full.T.vol1.difftar.gpg`)
//! for writing, and for reading also its short names (`df.<base36>.1.dt.g`),
//! `.part` names and old W3C times.

use super::time;

/// What a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Volume `volume` of the full set taken at `time`.
    FullVolume { time: i64, volume: u32 },
    /// Manifest of a full set.
    FullManifest { time: i64 },
    /// Signatures of a full set.
    FullSignatures { time: i64 },
    /// Volume of the incremental set from `start` (the previous set's time) to `end`.
    IncVolume { start: i64, end: i64, volume: u32 },
    /// Manifest of an incremental set.
    IncManifest { start: i64, end: i64 },
    /// Signatures of the changes of an incremental set.
    NewSignatures { start: i64, end: i64 },
}

/// How a written file is encoded, which decides its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// OpenPGP: `.gpg`, on every file.
    Gpg,
    /// gzip on volumes and signatures (`.gz`); manifests stay plain.
    Gzip,
    /// No suffix.
    Plain,
}

/// A name read from the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What the file is.
    pub kind: Kind,
    /// Ends in `.gpg`, `.g` or `.p7m`.
    pub encrypted: bool,
    /// Ends in `.gz` or `.z`.
    pub compressed: bool,
    /// A `.part` file (only ever in a local cache).
    pub partial: bool,
}

/// The long name duplicity writes for `kind` with `encoding`.
pub fn name(kind: &Kind, encoding: Encoding) -> String {
    let t = time::to_string;
    let (base, is_manifest) = match kind {
        Kind::FullVolume { time, volume } => (format!("duplicity-full.{}.vol{volume}.difftar", t(*time)), false),
        Kind::FullManifest { time } => (format!("duplicity-full.{}.manifest", t(*time)), true),
        Kind::FullSignatures { time } => (format!("duplicity-full-signatures.{}.sigtar", t(*time)), false),
        Kind::IncVolume { start, end, volume } => {
            (format!("duplicity-inc.{}.to.{}.vol{volume}.difftar", t(*start), t(*end)), false)
        }
        Kind::IncManifest { start, end } => (format!("duplicity-inc.{}.to.{}.manifest", t(*start), t(*end)), true),
        Kind::NewSignatures { start, end } => {
            (format!("duplicity-new-signatures.{}.to.{}.sigtar", t(*start), t(*end)), false)
        }
    };
    match (encoding, is_manifest) {
        (Encoding::Gpg, _) => format!("{base}.gpg"),
        (Encoding::Gzip, false) => format!("{base}.gz"),
        _ => base,
    }
}

fn base36(s: &str) -> Option<i64> {
    i64::from_str_radix(s, 36).ok()
}

fn volume_number(token: &str) -> Option<u32> {
    let digits = token.strip_prefix("vol")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Parse a remote name; `None` for names that are not duplicity's (which
/// duplicity ignores).
pub fn parse(name: &str) -> Option<Parsed> {
    let encrypted = [".gpg", ".g", ".p7m"].iter().any(|s| name.ends_with(s));
    let compressed = [".gz", ".z"].iter().any(|s| name.ends_with(s));
    let tokens: Vec<&str> = name.split('.').collect();
    let (kind, rest) = parse_long(&tokens).or_else(|| parse_short(&tokens))?;
    let partial = matches!(rest.first(), Some(&"part") | Some(&"p"));
    Some(Parsed { kind, encrypted, compressed, partial })
}

/// The kind and the tokens after the type marker.
fn parse_long<'a>(t: &'a [&'a str]) -> Option<(Kind, &'a [&'a str])> {
    match *t.first()? {
        "duplicity-full" => {
            let time = time::parse(t.get(1)?)?;
            match (t.get(2)?, t.get(3)) {
                (&"manifest", _) => Some((Kind::FullManifest { time }, &t[3..])),
                (vol, Some(&"difftar")) => Some((Kind::FullVolume { time, volume: volume_number(vol)? }, &t[4..])),
                _ => None,
            }
        }
        "duplicity-full-signatures" => {
            let time = time::parse(t.get(1)?)?;
            (*t.get(2)? == "sigtar").then(|| (Kind::FullSignatures { time }, &t[3..]))
        }
        "duplicity-inc" | "duplicity-new-signatures" => {
            if *t.get(2)? != "to" {
                return None;
            }
            let (start, end) = (time::parse(t.get(1)?)?, time::parse(t.get(3)?)?);
            match (t[0], t.get(4)?, t.get(5)) {
                ("duplicity-new-signatures", &"sigtar", _) => Some((Kind::NewSignatures { start, end }, &t[5..])),
                ("duplicity-inc", &"manifest", _) => Some((Kind::IncManifest { start, end }, &t[5..])),
                ("duplicity-inc", vol, Some(&"difftar")) => {
                    Some((Kind::IncVolume { start, end, volume: volume_number(vol)? }, &t[6..]))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn parse_short<'a>(t: &'a [&'a str]) -> Option<(Kind, &'a [&'a str])> {
    match *t.first()? {
        "df" => {
            let time = base36(t.get(1)?)?;
            match (t.get(2)?, t.get(3)) {
                (&"m", _) => Some((Kind::FullManifest { time }, &t[3..])),
                (vol, Some(&"dt")) => Some((Kind::FullVolume { time, volume: base36(vol)? as u32 }, &t[4..])),
                _ => None,
            }
        }
        "dfs" => {
            let time = base36(t.get(1)?)?;
            (*t.get(2)? == "st").then(|| (Kind::FullSignatures { time }, &t[3..]))
        }
        "di" => {
            let (start, end) = (base36(t.get(1)?)?, base36(t.get(2)?)?);
            match (t.get(3)?, t.get(4)) {
                (&"m", _) => Some((Kind::IncManifest { start, end }, &t[4..])),
                (vol, Some(&"dt")) => Some((Kind::IncVolume { start, end, volume: base36(vol)? as u32 }, &t[5..])),
                _ => None,
            }
        }
        "dns" => {
            let (start, end) = (base36(t.get(1)?)?, base36(t.get(2)?)?);
            (*t.get(3)? == "st").then(|| (Kind::NewSignatures { start, end }, &t[4..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_345_878; // 20261122T111118Z
    const T1: i64 = T0 + 3600;

    #[test]
    fn long_names_as_duplicity_writes_them() {
        let cases = [
            (
                Kind::FullVolume { time: T0, volume: 1 },
                Encoding::Gpg,
                "duplicity-full.20261122T111118Z.vol1.difftar.gpg",
            ),
            (Kind::FullManifest { time: T0 }, Encoding::Gpg, "duplicity-full.20261122T111118Z.manifest.gpg"),
            (Kind::FullManifest { time: T0 }, Encoding::Gzip, "duplicity-full.20261122T111118Z.manifest"),
            (Kind::FullSignatures { time: T0 }, Encoding::Gzip, "duplicity-full-signatures.20261122T111118Z.sigtar.gz"),
            (
                Kind::IncVolume { start: T0, end: T1, volume: 12 },
                Encoding::Plain,
                "duplicity-inc.20261122T111118Z.to.20261122T121118Z.vol12.difftar",
            ),
            (
                Kind::IncManifest { start: T0, end: T1 },
                Encoding::Gpg,
                "duplicity-inc.20261122T111118Z.to.20261122T121118Z.manifest.gpg",
            ),
            (
                Kind::NewSignatures { start: T0, end: T1 },
                Encoding::Gpg,
                "duplicity-new-signatures.20261122T111118Z.to.20261122T121118Z.sigtar.gpg",
            ),
        ];
        for (kind, encoding, expected) in cases {
            assert_eq!(name(&kind, encoding), expected);
            let parsed = parse(expected).unwrap();
            assert_eq!(parsed.kind, kind, "{expected}");
            assert_eq!(parsed.encrypted, encoding == Encoding::Gpg, "{expected}");
            assert!(!parsed.partial);
        }
    }

    #[test]
    fn short_partial_and_old_names() {
        // From duplicity's test_file_naming.py.
        let p = parse("dns.h112bi.h14rg0.st.g").unwrap();
        assert_eq!(p.kind, Kind::NewSignatures { start: base36("h112bi").unwrap(), end: base36("h14rg0").unwrap() });
        assert!(p.encrypted);
        let p = parse("dfs.h5dixs.st.p.g").unwrap();
        assert!(matches!(p.kind, Kind::FullSignatures { .. }) && p.partial && p.encrypted);
        let p = parse("df.h5dixs.1b.dt.z").unwrap();
        assert_eq!(p.kind, Kind::FullVolume { time: base36("h5dixs").unwrap(), volume: 47 });
        assert!(p.compressed);
        let p = parse("duplicity-new-signatures.2002-08-17T16:17:01-07:00.to.2002-08-18T00:04:30-07:00.sigtar.gpg")
            .unwrap();
        assert_eq!(p.kind, Kind::NewSignatures { start: 1_029_626_221, end: 1_029_654_270 });
        let p = parse("duplicity-full.20261122T111118Z.manifest.part").unwrap();
        assert!(p.partial && matches!(p.kind, Kind::FullManifest { .. }));
    }

    #[test]
    fn foreign_names_are_ignored() {
        for n in [
            "README",
            "duplicity-full.notatime.vol1.difftar",
            "duplicity-full.20261122T111118Z.volx.difftar",
            "duplicity-inc.20261122T111118Z.manifest",
            "lockfile",
            ".orchestrator-tmp-1-2",
        ] {
            assert_eq!(parse(n), None, "{n}");
        }
    }
}
