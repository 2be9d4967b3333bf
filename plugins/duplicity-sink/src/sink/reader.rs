//! Reading a full set back: its volumes in manifest order as one stream of
//! tar entries, with multivol chunks joined into one file.

use crate::format::tarread::{Header, TarReader};
use plugin_sdk::prelude::*;
use plugin_sdk::storage;
use std::collections::VecDeque;
use std::io::BufReader;

type Volume = TarReader<BufReader<storage::ObjectReader>>;

/// What an entry name in a difftar says.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    Snapshot(Vec<u8>),
    Multivol(Vec<u8>, u64),
    Other(String),
}

fn parse_name(name: &[u8]) -> Name {
    if name == b"snapshot/./" || name == b"snapshot/" || name == b"snapshot/." {
        return Name::Snapshot(Vec::new());
    }
    if let Some(rest) = name.strip_prefix(b"snapshot/") {
        return Name::Snapshot(rest.strip_suffix(b"/").unwrap_or(rest).to_vec());
    }
    if let Some(rest) = name.strip_prefix(b"multivol_snapshot/")
        && let Some(slash) = rest.iter().rposition(|&b| b == b'/')
        && let Some(n) = std::str::from_utf8(&rest[slash + 1..]).ok().and_then(|n| n.parse().ok())
    {
        return Name::Multivol(rest[..slash].to_vec(), n);
    }
    Name::Other(String::from_utf8_lossy(name).into_owned())
}

fn under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty() || path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// Entries of a full set.
pub struct DupReader {
    names: VecDeque<String>,
    volume: Option<Volume>,
    lookahead: Option<Header>,
    /// Path of the file whose content is being read, when it is multivol.
    multivol: Option<Vec<u8>>,
    prefix: Vec<u8>,
}

impl DupReader {
    /// Read the volumes `names` in order; only entries under `prefix`.
    pub fn new(names: Vec<String>, prefix: Option<Vec<u8>>) -> DupReader {
        DupReader {
            names: names.into(),
            volume: None,
            lookahead: None,
            multivol: None,
            prefix: prefix.unwrap_or_default(),
        }
    }

    fn header(&mut self) -> Result<Option<Header>, PluginError> {
        if let Some(h) = self.lookahead.take() {
            return Ok(Some(h));
        }
        loop {
            if let Some(v) = self.volume.as_mut()
                && let Some(h) = v.next_header().map_err(corrupt)?
            {
                return Ok(Some(h));
            }
            let Some(name) = self.names.pop_front() else { return Ok(None) };
            self.volume = Some(TarReader::new(BufReader::with_capacity(1 << 20, super::open_object(&name)?)));
        }
    }
}

fn corrupt(e: std::io::Error) -> PluginError {
    PluginError::Corrupt(format!("a volume cannot be read: {e}"))
}

fn entry(path: Vec<u8>, h: &Header) -> Result<Entry, PluginError> {
    let kind = match h.typeflag {
        b'0' | b'7' => EntryKind::File,
        b'5' => EntryKind::Directory,
        b'2' => EntryKind::Symlink,
        b'6' => EntryKind::Fifo,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'1' => return Err(PluginError::Unsupported("hard links in a duplicity volume are not supported".into())),
        t => return Err(PluginError::Corrupt(format!("unknown tar entry type {:?}", t as char))),
    };
    Ok(Entry {
        path,
        meta: Metadata {
            kind,
            mode: h.mode & 0o7777,
            uid: h.uid,
            gid: h.gid,
            mtime: h.mtime,
            mtime_nsec: 0,
            size: if kind == EntryKind::File { h.size } else { 0 },
            symlink_target: if kind == EntryKind::Symlink { h.link_target.clone() } else { None },
            device: h.device,
        },
        attributes: Vec::new(),
    })
}

impl plugin_sdk::Reader for DupReader {
    fn next(&mut self) -> Result<Option<Entry>, PluginError> {
        // Skip what is left of a multivol file nobody read.
        while self.multivol.is_some() {
            if plugin_sdk::Reader::read(self, 1 << 20)?.is_empty() {
                break;
            }
        }
        while let Some(h) = self.header()? {
            let (path, multivol) = match parse_name(&h.name) {
                Name::Snapshot(p) => (p, false),
                Name::Multivol(p, 1) => (p, true),
                Name::Multivol(p, n) => {
                    return Err(PluginError::Corrupt(format!(
                        "chunk {n} of {} without its first chunk",
                        String::from_utf8_lossy(&p)
                    )));
                }
                Name::Other(n) => {
                    return Err(PluginError::Unsupported(format!(
                        "entry {n}: incremental sets are not supported by this build yet"
                    )));
                }
            };
            if !under(&path, &self.prefix) {
                continue;
            }
            let mut e = entry(path.clone(), &h)?;
            if multivol {
                e.meta.size = 0; // the total is known only once every chunk was read
                self.multivol = Some(path);
            }
            return Ok(Some(e));
        }
        Ok(None)
    }

    fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        let mut buf = vec![0u8; max.min(4 << 20)];
        loop {
            let n = match self.volume.as_mut() {
                Some(v) => v.read_data(&mut buf).map_err(corrupt)?,
                None => 0,
            };
            if n > 0 {
                buf.truncate(n);
                return Ok(buf);
            }
            let Some(path) = self.multivol.clone() else { return Ok(Vec::new()) };
            // The chunk is done: the next entry continues this file, or it
            // is the next entry.
            match self.header()? {
                Some(h) if matches!(parse_name(&h.name), Name::Multivol(ref p, n) if *p == path && n > 1) => continue,
                other => {
                    self.lookahead = other;
                    self.multivol = None;
                    return Ok(Vec::new());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(parse_name(b"snapshot/./"), Name::Snapshot(vec![]));
        assert_eq!(parse_name(b"snapshot/"), Name::Snapshot(vec![]));
        assert_eq!(parse_name(b"snapshot/a/b/"), Name::Snapshot(b"a/b".to_vec()));
        assert_eq!(parse_name(b"multivol_snapshot/a/b/12"), Name::Multivol(b"a/b".to_vec(), 12));
        assert!(matches!(parse_name(b"diff/a"), Name::Other(_)));
        assert!(under(b"a/b", b"a") && !under(b"ab", b"a") && under(b"x", b""));
    }
}
