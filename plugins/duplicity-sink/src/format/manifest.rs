//! Manifests: the commit marker of a set. Written byte for byte as duplicity
//! writes them (streamed order: Hostname, Localdir, volumes, Filelist) and
//! parsed as duplicity parses them (whitespace-insensitive, case-insensitive
//! keywords, either order).

use super::quote::{quote, unquote};

/// One volume's first and last entry and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Volume number, from 1.
    pub number: u32,
    /// Path of the first entry (`""` for the root) and its multivol chunk.
    pub start: (Vec<u8>, Option<u64>),
    /// Path of the last entry and its multivol chunk.
    pub end: (Vec<u8>, Option<u64>),
    /// Lowercase hex SHA-1 of the stored (encrypted) file.
    pub sha1: Option<String>,
}

/// How a regular file changed in a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not in the previous set.
    New,
    /// Content or metadata changed.
    Changed,
    /// Gone since the previous set.
    Deleted,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Changed => "changed",
            Change::Deleted => "deleted",
        }
    }
}

/// A set's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Checked by duplicity only before appending an incremental; optional.
    pub hostname: Option<Vec<u8>>,
    /// Likewise.
    pub localdir: Option<Vec<u8>>,
    /// The volumes in order.
    pub volumes: Vec<Volume>,
    /// Regular files new, changed or deleted in this set.
    pub files: Vec<(Change, Vec<u8>)>,
}

fn index(path: &[u8]) -> Vec<u8> {
    if path.is_empty() { b".".to_vec() } else { quote(path) }
}

fn path_line(out: &mut Vec<u8>, label: &[u8], (path, block): &(Vec<u8>, Option<u64>)) {
    out.extend_from_slice(label);
    out.extend_from_slice(&index(path));
    out.push(b' ');
    // duplicity writes a single space where there is no chunk number.
    match block {
        Some(b) => out.extend_from_slice(b.to_string().as_bytes()),
        None => out.push(b' '),
    }
    out.push(b'\n');
}

impl Manifest {
    /// The bytes duplicity writes for this manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(h) = self.hostname.as_ref().filter(|h| !h.is_empty()) {
            out.extend_from_slice(b"Hostname ");
            out.extend_from_slice(h);
            out.push(b'\n');
        }
        if let Some(l) = &self.localdir {
            out.extend_from_slice(b"Localdir ");
            out.extend_from_slice(&quote(l));
            out.push(b'\n');
        }
        for v in &self.volumes {
            out.extend_from_slice(format!("Volume {}:\n", v.number).as_bytes());
            path_line(&mut out, b"    StartingPath   ", &v.start);
            path_line(&mut out, b"    EndingPath     ", &v.end);
            if let Some(h) = &v.sha1 {
                out.extend_from_slice(format!("    Hash SHA1 {h}\n").as_bytes());
            }
        }
        out.extend_from_slice(format!("Filelist {}\n", self.files.len()).as_bytes());
        for (change, path) in &self.files {
            out.extend_from_slice(format!("    {:<7}  ", change.word()).as_bytes());
            out.extend_from_slice(&index(path));
            out.push(b'\n');
        }
        out
    }

    /// Parse a manifest; `Err` names what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut current: Option<Volume> = None;
        let mut in_filelist = false;
        let finish = |m: &mut Manifest, v: Option<Volume>| -> Result<(), String> {
            let Some(v) = v else { return Ok(()) };
            if v.start.0 == b"\x00" || v.end.0 == b"\x00" {
                return Err(format!("volume {} lacks its StartingPath or EndingPath", v.number));
            }
            // A volume number seen again (a restarted backup) drops what
            // was recorded after it.
            m.volumes.retain(|old| old.number < v.number);
            m.volumes.push(v);
            Ok(())
        };
        for line in bytes.split(|&b| b == b'\n') {
            let fields: Vec<&[u8]> = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).collect();
            let Some(first) = fields.first() else { continue };
            let keyword = first.to_ascii_lowercase();
            let indented = line.first().is_some_and(|b| b.is_ascii_whitespace());
            match (keyword.as_slice(), indented) {
                (b"hostname", false) => m.hostname = Some(line[first.len()..].trim_ascii().to_vec()),
                (b"localdir", false) => {
                    m.localdir = Some(unquote(line[first.len()..].trim_ascii()).ok_or("bad Localdir")?)
                }
                (b"volume", false) => {
                    finish(&mut m, current.take())?;
                    in_filelist = false;
                    let number = fields
                        .get(1)
                        .and_then(|n| std::str::from_utf8(n.strip_suffix(b":").unwrap_or(n)).ok())
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| format!("bad volume line: {}", String::from_utf8_lossy(line)))?;
                    let missing = (b"\x00".to_vec(), None);
                    current = Some(Volume { number, start: missing.clone(), end: missing, sha1: None });
                }
                (b"filelist", false) => {
                    finish(&mut m, current.take())?;
                    in_filelist = true;
                }
                (b"startingpath" | b"endingpath", true) if current.is_some() => {
                    let path = fields.get(1).ok_or("a path line without a path")?;
                    let path = unquote(path).ok_or("a badly quoted path")?;
                    let path = if path == b"." { Vec::new() } else { path };
                    let block = fields.get(2).and_then(|b| std::str::from_utf8(b).ok()).and_then(|b| b.parse().ok());
                    let v = current.as_mut().expect("guarded");
                    if keyword == b"startingpath" {
                        v.start = (path, block);
                    } else {
                        v.end = (path, block);
                    }
                }
                (b"hash", true) if current.is_some() => {
                    if let (Some(name), Some(value)) = (fields.get(1), fields.get(2))
                        && name.eq_ignore_ascii_case(b"sha1")
                    {
                        current.as_mut().expect("guarded").sha1 = Some(String::from_utf8_lossy(value).to_lowercase());
                    }
                }
                (word, true) if in_filelist => {
                    let change = match word {
                        b"new" => Change::New,
                        b"changed" => Change::Changed,
                        b"deleted" => Change::Deleted,
                        _ => continue,
                    };
                    // Restore never needs the file list: a line we cannot read
                    // is skipped, not a reason to refuse the set.
                    let Some(path) = fields.get(1).and_then(|p| unquote(p)) else { continue };
                    m.files.push((change, if path == b"." { Vec::new() } else { path }));
                }
                _ => {}
            }
        }
        finish(&mut m, current.take())?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest duplicity 3.2.1 wrote in the spec's example (§2.1), with
    /// the UTF-8 path written raw.
    fn example() -> (Manifest, Vec<u8>) {
        let unicode = "sub/ünï©ode.txt".as_bytes().to_vec();
        let m = Manifest {
            hostname: Some(b"vm".to_vec()),
            localdir: Some(b"src".to_vec()),
            volumes: vec![
                Volume {
                    number: 1,
                    start: (vec![], None),
                    end: (b"big.bin".to_vec(), Some(16)),
                    sha1: Some("b43d60a4e449c1b7dd48f04d8ac79833529e70af".into()),
                },
                Volume {
                    number: 2,
                    start: (b"big.bin".to_vec(), Some(17)),
                    end: (b"big.bin".to_vec(), Some(32)),
                    sha1: Some("d86c62782fe50a8b54b5bdbaa96453e1eb6edb4e".into()),
                },
                Volume {
                    number: 3,
                    start: (b"big.bin".to_vec(), Some(33)),
                    end: (unicode.clone(), None),
                    sha1: Some("4ddd3ad6406da0eb787ba06356040f54490b1fc1".into()),
                },
            ],
            files: vec![
                (Change::New, b"a.txt".to_vec()),
                (Change::New, b"big.bin".to_vec()),
                (Change::New, b"dir with space/file with space.txt".to_vec()),
            ],
        };
        let mut bytes = b"Hostname vm\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     big.bin 16\n    Hash SHA1 b43d60a4e449c1b7dd48f04d8ac79833529e70af\nVolume 2:\n    StartingPath   big.bin 17\n    EndingPath     big.bin 32\n    Hash SHA1 d86c62782fe50a8b54b5bdbaa96453e1eb6edb4e\nVolume 3:\n    StartingPath   big.bin 33\n    EndingPath     ".to_vec();
        bytes.extend_from_slice(&unicode);
        bytes.extend_from_slice(b"  \n    Hash SHA1 4ddd3ad6406da0eb787ba06356040f54490b1fc1\nFilelist 3\n    new      a.txt\n    new      big.bin\n    new      \"dir\\x20with\\x20space/file\\x20with\\x20space.txt\"\n");
        (m, bytes)
    }

    #[test]
    fn writes_duplicitys_bytes() {
        let (m, bytes) = example();
        assert_eq!(String::from_utf8_lossy(&m.to_bytes()), String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parses_its_own_and_duplicitys_orders() {
        let (m, bytes) = example();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        // Manifest.to_string() puts the file list first; case and spacing vary.
        let reordered = b"hostname vm\nFilelist 1\n    changed  a.txt\nvolume 1:\n  startingpath . \n  endingpath \"new\\x0aline\" 3\n  hash md5 abc\n  hash SHA1 ABCDEF\n";
        let m = Manifest::parse(reordered).unwrap();
        assert_eq!(m.files, vec![(Change::Changed, b"a.txt".to_vec())]);
        assert_eq!(m.volumes[0].end, (b"new\nline".to_vec(), Some(3)));
        assert_eq!(m.volumes[0].sha1.as_deref(), Some("abcdef"));
    }

    #[test]
    fn an_empty_incremental_and_broken_volumes() {
        let empty = Manifest {
            hostname: None,
            localdir: None,
            volumes: vec![Volume { number: 1, start: (vec![], None), end: (vec![], None), sha1: Some("0".repeat(40)) }],
            files: vec![(Change::Changed, vec![]), (Change::Deleted, b"gone".to_vec())],
        };
        let bytes = empty.to_bytes();
        assert!(
            bytes.ends_with(b"Filelist 2\n    changed  .\n    deleted  gone\n"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(bytes.starts_with(b"Volume 1:\n    StartingPath   .  \n    EndingPath     .  \n"));
        assert_eq!(Manifest::parse(&bytes).unwrap(), empty);
        assert!(Manifest::parse(b"Volume 1:\n    EndingPath . \n").unwrap_err().contains("StartingPath"));
        // A restarted backup: volume 2 recorded again drops the old 2 and 3.
        let restarted = b"Volume 1:\n StartingPath . \n EndingPath a \nVolume 2:\n StartingPath b \n EndingPath c \nVolume 3:\n StartingPath d \n EndingPath e \nVolume 2:\n StartingPath x \n EndingPath y \n";
        let m = Manifest::parse(restarted).unwrap();
        assert_eq!(m.volumes.iter().map(|v| v.number).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(m.volumes[1].start.0, b"x");
    }
}
