//! Reading entries back: entry names into (prefix, path), tar headers into
//! metadata, the index order every stream is sorted by, sigtars as streams
//! of signature entries, and the merge of a chain's sigtars into the state
//! of the source at the chain's end (spec §4.1, "how the sigtars are read").

use super::tarentry::{Prefix, TarKind, TarMeta};
use super::tarread::{Header, TarReader};
use std::cmp::Ordering;
use std::io::{self, Read};

/// duplicity's index order: component by component, bytewise, so a
/// directory comes right before its contents (`sub` < `sub/x` < `sub-x`).
pub fn cmp_index(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return a.len().cmp(&b.len());
    }
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// The prefix and path an entry name holds; `None` for a name that is not
/// duplicity's.
pub fn parse_name(name: &[u8]) -> Option<(Prefix, Vec<u8>)> {
    let trim = |p: &[u8]| {
        let p = p.strip_suffix(b"/").unwrap_or(p);
        if p == b"." { Vec::new() } else { p.strip_prefix(b"./").unwrap_or(p).to_vec() }
    };
    for (head, diff) in [("multivol_snapshot/", false), ("multivol_diff/", true)] {
        if let Some(rest) = name.strip_prefix(head.as_bytes()) {
            let slash = rest.iter().rposition(|&b| b == b'/')?;
            let n: u64 = std::str::from_utf8(&rest[slash + 1..]).ok()?.parse().ok()?;
            let prefix = if diff { Prefix::MultivolDiff(n) } else { Prefix::MultivolSnapshot(n) };
            return Some((prefix, trim(&rest[..slash])));
        }
    }
    for (head, prefix) in [
        ("snapshot", Prefix::Snapshot),
        ("diff", Prefix::Diff),
        ("deleted", Prefix::Deleted),
        ("signature", Prefix::Signature),
    ] {
        if let Some(rest) = name.strip_prefix(head.as_bytes()) {
            if rest.is_empty() {
                return Some((prefix, Vec::new()));
            }
            if let Some(path) = rest.strip_prefix(b"/") {
                return Some((prefix, trim(path)));
            }
        }
    }
    None
}

/// The metadata a header carries.
pub fn meta_of(h: &Header) -> Result<TarMeta, String> {
    let kind = match h.typeflag {
        b'0' | b'\0' | b'7' => TarKind::Regular,
        b'5' => TarKind::Directory,
        b'2' => TarKind::Symlink,
        b'6' => TarKind::Fifo,
        b'3' => TarKind::CharDevice,
        b'4' => TarKind::BlockDevice,
        b'1' => return Err("hard links in a duplicity archive are not supported (duplicity rejects them too)".into()),
        t => return Err(format!("unknown tar entry type {:?}", t as char)),
    };
    Ok(TarMeta {
        kind,
        mode: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        mtime: h.mtime,
        link_target: if kind == TarKind::Symlink { h.link_target.clone() } else { None },
        device: if matches!(kind, TarKind::CharDevice | TarKind::BlockDevice) { h.device } else { None },
    })
}

/// What a sigtar says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A regular file and the librsync signature of its content.
    File(Vec<u8>),
    /// Another kind of entry (no data).
    Other,
    /// The path was deleted.
    Deleted,
}

/// One sigtar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigEntry {
    pub path: Vec<u8>,
    pub meta: TarMeta,
    pub signed: Signed,
    /// The entry's attributes, sorted by name (none for a deletion).
    pub attributes: Vec<(String, String)>,
    /// A regular file's size, recorded with attributes (`ORCHESTRATOR.size`);
    /// `None` where duplicity's sigtars have none.
    pub size: Option<u64>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The entries of one sigtar, in the order stored.
pub struct SigTar<R> {
    tar: TarReader<R>,
}

impl<R: Read> SigTar<R> {
    /// Entries of the sigtar read from `inner` (decoded).
    pub fn new(inner: R) -> Self {
        SigTar { tar: TarReader::new(inner) }
    }

    /// The next entry; `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<SigEntry>> {
        let Some(h) = self.tar.next_header()? else { return Ok(None) };
        let name = String::from_utf8_lossy(&h.name).into_owned();
        let (prefix, path) = parse_name(&h.name).ok_or_else(|| bad(format!("bad sigtar entry name {name:?}")))?;
        let signed = match prefix {
            Prefix::Signature => {
                if h.size > 1 << 30 {
                    return Err(bad(format!("signature of {name:?} is implausibly large")));
                }
                let mut sig = vec![0u8; h.size as usize];
                let mut filled = 0;
                while filled < sig.len() {
                    let n = self.tar.read_data(&mut sig[filled..])?;
                    if n == 0 {
                        return Err(bad(format!("signature of {name:?} is cut short")));
                    }
                    filled += n;
                }
                Signed::File(sig)
            }
            Prefix::Snapshot => Signed::Other,
            Prefix::Deleted => Signed::Deleted,
            _ => return Err(bad(format!("unexpected entry {name:?} in a sigtar"))),
        };
        let deleted = signed == Signed::Deleted;
        let meta = if deleted { TarMeta::deleted() } else { meta_of(&h).map_err(bad)? };
        let (attributes, size) = if deleted { (Vec::new(), None) } else { (h.attributes, h.file_size) };
        Ok(Some(SigEntry { path, meta, signed, attributes, size }))
    }
}

/// A stream of sigtar entries (a [`SigTar`] over any reader).
pub trait SigSource {
    /// The next entry; `None` at the end.
    fn next_entry(&mut self) -> io::Result<Option<SigEntry>>;
}

impl<R: Read> SigSource for SigTar<R> {
    fn next_entry(&mut self) -> io::Result<Option<SigEntry>> {
        SigTar::next_entry(self)
    }
}

/// The sigtars of a chain merged by index, oldest first: for a path the
/// newest entry wins, and a deletion removes it. Yields what existed at the
/// chain's end, in index order, never `Signed::Deleted`.
pub struct Collated {
    sources: Vec<(Box<dyn SigSource>, Option<SigEntry>)>,
}

impl Collated {
    /// Merge `sources`, the full signatures first, then each new-signatures.
    pub fn new(sources: Vec<Box<dyn SigSource>>) -> io::Result<Collated> {
        let mut with_heads = Vec::with_capacity(sources.len());
        for mut s in sources {
            let head = s.next_entry()?;
            with_heads.push((s, head));
        }
        Ok(Collated { sources: with_heads })
    }

    /// The next path that exists at the chain's end.
    pub fn next_entry(&mut self) -> io::Result<Option<SigEntry>> {
        loop {
            let Some(min) = self
                .sources
                .iter()
                .filter_map(|(_, h)| h.as_ref().map(|e| &e.path))
                .min_by(|a, b| cmp_index(a, b))
                .cloned()
            else {
                return Ok(None);
            };
            let mut newest = None;
            for (source, head) in &mut self.sources {
                if head.as_ref().is_some_and(|e| e.path == min) {
                    let next = source.next_entry()?;
                    if let Some(n) = &next
                        && cmp_index(&n.path, &min) != Ordering::Greater
                    {
                        return Err(bad(format!("a sigtar is out of order at {:?}", String::from_utf8_lossy(&n.path))));
                    }
                    newest = std::mem::replace(head, next);
                }
            }
            match newest {
                Some(e) if e.signed != Signed::Deleted => return Ok(Some(e)),
                _ => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tarentry::{entry_name, footer, padding, write_header};

    #[test]
    fn index_order_is_component_wise() {
        let mut v: Vec<&[u8]> = vec![b"sub-x", b"sub/deeper/d.txt", b"", b"sub", b"a", b"sub/deeper"];
        v.sort_by(|a, b| cmp_index(a, b));
        assert_eq!(v, [&b""[..], b"a", b"sub", b"sub/deeper", b"sub/deeper/d.txt", b"sub-x"]);
    }

    #[test]
    fn entry_names() {
        assert_eq!(parse_name(b"snapshot/./"), Some((Prefix::Snapshot, vec![])));
        assert_eq!(parse_name(b"snapshot/"), Some((Prefix::Snapshot, vec![])));
        assert_eq!(parse_name(b"snapshot/a/b/"), Some((Prefix::Snapshot, b"a/b".to_vec())));
        assert_eq!(parse_name(b"diff/a b"), Some((Prefix::Diff, b"a b".to_vec())));
        assert_eq!(parse_name(b"deleted/x"), Some((Prefix::Deleted, b"x".to_vec())));
        assert_eq!(parse_name(b"signature/x/y"), Some((Prefix::Signature, b"x/y".to_vec())));
        assert_eq!(parse_name(b"multivol_snapshot/a/b/12"), Some((Prefix::MultivolSnapshot(12), b"a/b".to_vec())));
        assert_eq!(parse_name(b"multivol_diff/big/3"), Some((Prefix::MultivolDiff(3), b"big".to_vec())));
        assert_eq!(parse_name(b"other/x"), None);
        assert_eq!(parse_name(b"snapshotx"), None);
    }

    fn sigtar(entries: &[(Prefix, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (prefix, path, data) in entries {
            let meta = match prefix {
                Prefix::Deleted => TarMeta::deleted(),
                _ => TarMeta {
                    kind: if *prefix == Prefix::Signature { TarKind::Regular } else { TarKind::Directory },
                    mode: 0o644,
                    uid: 1,
                    gid: 2,
                    mtime: 3,
                    link_target: None,
                    device: None,
                },
            };
            let is_dir = meta.kind == TarKind::Directory;
            write_header(&mut out, &entry_name(*prefix, path.as_bytes(), is_dir, true), &meta, data.len() as u64)
                .unwrap();
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        let len = out.len() as u64;
        out.extend(footer(len));
        out
    }

    /// A sigtar entry: path, attributes, recorded file size.
    type SigSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<u64>);

    #[test]
    fn sigtars_carry_attributes_and_sizes_and_the_newest_wins() {
        use crate::format::tarentry::{pax_records, write_header_pax};
        let file =
            TarMeta { kind: TarKind::Regular, mode: 0o600, uid: 1, gid: 2, mtime: 3, link_target: None, device: None };
        let sigtar = |entries: &[SigSpec]| {
            let mut out = Vec::new();
            for (path, attrs, size) in entries {
                let attrs: Vec<(String, String)> = attrs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                let pax = if attrs.is_empty() { Vec::new() } else { pax_records(&attrs, *size) };
                let name = entry_name(Prefix::Signature, path.as_bytes(), false, true);
                write_header_pax(&mut out, &name, &file, 3, &pax).unwrap();
                out.extend_from_slice(b"sig");
                out.extend(std::iter::repeat_n(0, padding(3)));
            }
            let len = out.len() as u64;
            out.extend(footer(len));
            out
        };
        let full = sigtar(&[("a", &[("maildir.info", "2,S")], Some(20)), ("b", &[("maildir.info", "2,")], Some(7))]);
        let inc = sigtar(&[("a", &[("maildir.info", "2,FS")], Some(20)), ("b", &[], None)]);
        let sources: Vec<Box<dyn SigSource>> =
            vec![Box::new(SigTar::new(std::io::Cursor::new(full))), Box::new(SigTar::new(std::io::Cursor::new(inc)))];
        let mut c = Collated::new(sources).unwrap();
        let a = c.next_entry().unwrap().unwrap();
        assert_eq!((a.attributes, a.size), (vec![("maildir.info".to_string(), "2,FS".to_string())], Some(20)));
        let b = c.next_entry().unwrap().unwrap();
        assert_eq!((b.attributes, b.size), (vec![], None), "the newest entry has no attributes");
        assert!(c.next_entry().unwrap().is_none());
    }

    #[test]
    fn newest_wins_and_deletions_remove() {
        let full = sigtar(&[
            (Prefix::Snapshot, "", b""),
            (Prefix::Signature, "a", b"sig-a-1"),
            (Prefix::Snapshot, "d", b""),
            (Prefix::Signature, "d/x", b"sig-x"),
            (Prefix::Signature, "z", b"sig-z"),
        ]);
        let inc1 =
            sigtar(&[(Prefix::Signature, "a", b"sig-a-2"), (Prefix::Deleted, "d", b""), (Prefix::Deleted, "d/x", b"")]);
        let inc2 = sigtar(&[(Prefix::Signature, "b", b"sig-b"), (Prefix::Snapshot, "d", b"")]);
        let sources: Vec<Box<dyn SigSource>> = vec![
            Box::new(SigTar::new(std::io::Cursor::new(full))),
            Box::new(SigTar::new(std::io::Cursor::new(inc1))),
            Box::new(SigTar::new(std::io::Cursor::new(inc2))),
        ];
        let mut c = Collated::new(sources).unwrap();
        let mut got = Vec::new();
        while let Some(e) = c.next_entry().unwrap() {
            let sig = match e.signed {
                Signed::File(s) => String::from_utf8(s).unwrap(),
                _ => "-".into(),
            };
            got.push(format!("{}={sig}", String::from_utf8(e.path).unwrap()));
        }
        assert_eq!(got, ["=-", "a=sig-a-2", "b=sig-b", "d=-", "z=sig-z"]);
    }
}
