//! Reading a chain back at a time (spec §3.6): each set's volumes in
//! manifest order are one stream of tar entries (multivol chunks joined);
//! the streams are merged by index, and for each path the newest snapshot is
//! patched with every later delta. A deletion as the newest change hides the
//! path.
//!
//! Deltas copy from anywhere in the previous version, so a patched file's
//! earlier versions go to host scratch files, never into memory.

use super::store::Sealing;
use crate::format::delta::{self, Base, Forward, Patch, Sequential};
use crate::format::entries::{cmp_index, meta_of, parse_name};
use crate::format::tarentry::{Prefix, TarKind};
use crate::format::tarread::{Header, TarReader};
use plugin_sdk::prelude::*;
use plugin_sdk::scratch::ScratchFile;
use plugin_sdk::storage;
use std::collections::VecDeque;
use std::io::{self, BufReader, Read};

type Volume = TarReader<BufReader<storage::ObjectReader>>;

/// What a set says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Snapshot,
    Diff,
    Deleted,
}

/// The entry a set stream is positioned on.
struct Head {
    change: Change,
    path: Vec<u8>,
    header: Header,
    multivol: bool,
}

fn corrupt(e: io::Error) -> PluginError {
    PluginError::Corrupt(format!("a volume cannot be read: {e}"))
}

/// The entries of one set, its volumes read in order.
pub struct SetStream {
    sealing: Sealing,
    names: VecDeque<String>,
    buffer: usize,
    volume: Option<Volume>,
    lookahead: Option<Header>,
    head: Option<Head>,
    /// The head's content was read to its end.
    drained: bool,
}

impl SetStream {
    /// The set whose volumes are `names`, positioned on its first entry.
    /// `buffer` is the read buffer of each of its volumes in turn.
    pub fn open(sealing: Sealing, names: Vec<String>, buffer: usize) -> Result<SetStream, PluginError> {
        let mut s = SetStream {
            sealing,
            names: names.into(),
            buffer,
            volume: None,
            lookahead: None,
            head: None,
            drained: true,
        };
        s.advance()?;
        Ok(s)
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
            self.volume = Some(TarReader::new(BufReader::with_capacity(self.buffer, self.sealing.open(&name)?)));
        }
    }

    /// Move to the next entry, skipping what is left of the current one.
    fn advance(&mut self) -> Result<(), PluginError> {
        let mut sink = vec![0u8; 1 << 16];
        while !self.drained {
            if self.read(&mut sink)? == 0 {
                break;
            }
        }
        let previous = self.head.take().map(|h| h.path);
        let Some(header) = self.header()? else { return Ok(()) };
        let name = String::from_utf8_lossy(&header.name).into_owned();
        let (prefix, path) = parse_name(&header.name)
            .ok_or_else(|| PluginError::Corrupt(format!("unknown entry {name:?} in a volume")))?;
        let (change, multivol) = match prefix {
            Prefix::Snapshot => (Change::Snapshot, false),
            Prefix::Diff => (Change::Diff, false),
            Prefix::Deleted => (Change::Deleted, false),
            Prefix::MultivolSnapshot(1) => (Change::Snapshot, true),
            Prefix::MultivolDiff(1) => (Change::Diff, true),
            Prefix::MultivolSnapshot(_) | Prefix::MultivolDiff(_) => {
                return Err(PluginError::Corrupt(format!("{name}: a chunk without its first chunk")));
            }
            Prefix::Signature => return Err(PluginError::Corrupt(format!("{name}: a signature in a volume"))),
        };
        if let Some(previous) = previous
            && cmp_index(&previous, &path) != std::cmp::Ordering::Less
        {
            return Err(PluginError::Corrupt(format!("entries out of order at {name:?}")));
        }
        self.drained = change == Change::Deleted;
        self.head = Some(Head { change, path, header, multivol });
        Ok(())
    }

    /// Bytes of the head's data (a file's content or a delta), chunks of a
    /// multivol entry joined; 0 at its end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PluginError> {
        loop {
            if self.drained {
                return Ok(0);
            }
            let n = match self.volume.as_mut() {
                Some(v) => v.read_data(buf).map_err(corrupt)?,
                None => 0,
            };
            if n > 0 {
                return Ok(n);
            }
            let head = self.head.as_ref().expect("content has a head");
            if !head.multivol {
                self.drained = true;
                return Ok(0);
            }
            let path = head.path.clone();
            // The chunk is done: the next entry continues this file, or it
            // is the next entry.
            let next = self.header()?;
            let continues = next.as_ref().is_some_and(|h| {
                matches!(parse_name(&h.name), Some((Prefix::MultivolSnapshot(n) | Prefix::MultivolDiff(n), ref p))
                    if *p == path && n > 1)
            });
            if !continues {
                self.lookahead = next;
                self.drained = true;
                return Ok(0);
            }
        }
    }
}

impl Read for SetStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        SetStream::read(self, buf).map_err(PluginError::into_io)
    }
}

impl Base for ScratchFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        ScratchFile::read_at(self, offset, buf).map_err(PluginError::into_io)
    }
}

/// The read buffer of each of `streams` objects read at once (a chain's
/// sets, merged by index). One stream gets 1 MiB, as many host chunks as
/// fit; a long chain shares 64 MiB, at least 64 KiB each, so an hourly
/// chain of a month (700 sets) stays far inside the plugin's memory limit
/// instead of needing 700 MiB.
pub fn stream_buffer(streams: usize) -> usize {
    const SHARED: usize = 64 << 20;
    (SHARED / streams.max(1)).clamp(64 << 10, 1 << 20)
}

fn under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty() || path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

fn entry(path: Vec<u8>, h: &Header) -> Result<Entry, PluginError> {
    let meta = meta_of(h).map_err(PluginError::Corrupt)?;
    let kind = match meta.kind {
        TarKind::Regular => EntryKind::File,
        TarKind::Directory => EntryKind::Directory,
        TarKind::Symlink => EntryKind::Symlink,
        TarKind::Fifo => EntryKind::Fifo,
        TarKind::CharDevice => EntryKind::CharDevice,
        TarKind::BlockDevice => EntryKind::BlockDevice,
    };
    Ok(Entry {
        path,
        meta: Metadata {
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            mtime_nsec: 0,
            size: 0,
            symlink_target: meta.link_target,
            device: meta.device,
        },
        attributes: h.attributes.clone(),
    })
}

/// Where the current entry's content comes from.
enum Content {
    None,
    /// Straight from a set's stream.
    Stream(usize),
    /// A file patched as it is read: the last delta (in set `set`) applied
    /// to the version before it, kept in a scratch file.
    Patching {
        base: ScratchFile,
        patch: Patch,
        set: usize,
    },
    /// A file patched as it is read from the version before it, read front
    /// to back from its own set (`base`), because the newest delta (copied
    /// from set `set` into a scratch file) copies in order: no copy of the
    /// previous version is needed.
    Forward {
        delta: Sequential<ScratchFile>,
        patch: Patch,
        base: usize,
        base_pos: u64,
        set: usize,
    },
    /// Like `Patching`, with the delta already copied out of set `set`.
    PatchingCopied {
        base: ScratchFile,
        delta: Sequential<ScratchFile>,
        patch: Patch,
        set: usize,
    },
}

/// The state of a source at a time: a chain's sets merged.
pub struct DupReader {
    /// Oldest first: the full set, then each incremental.
    sets: Vec<SetStream>,
    prefix: Vec<u8>,
    with_content: bool,
    content: Content,
}

impl DupReader {
    /// Read the sets `sets` (each a list of volume names), oldest first; only
    /// entries under `prefix`.
    pub fn new(
        sealing: &Sealing,
        sets: Vec<Vec<String>>,
        prefix: Option<Vec<u8>>,
        with_content: bool,
    ) -> Result<DupReader, PluginError> {
        let buffer = stream_buffer(sets.len());
        let sets =
            sets.into_iter().map(|names| SetStream::open(sealing.clone(), names, buffer)).collect::<Result<_, _>>()?;
        Ok(DupReader { sets, prefix: prefix.unwrap_or_default(), with_content, content: Content::None })
    }

    /// Rebuild a file from its snapshot in set `base` and the deltas in
    /// `diffs`, oldest first, into a scratch file (the base for the newest
    /// delta, which is applied as the file is read).
    fn patch(&mut self, base: usize, diffs: &[usize]) -> Result<ScratchFile, PluginError> {
        let mut previous = ScratchFile::create()?;
        io::copy(&mut self.sets[base], &mut previous).map_err(PluginError::from_io)?;
        for &d in diffs {
            let mut next = ScratchFile::create()?;
            let path = String::from_utf8_lossy(&self.sets[d].head.as_ref().expect("a head").path).into_owned();
            delta::apply(&mut previous, &mut self.sets[d], &mut next)
                .map_err(|e| PluginError::Corrupt(format!("{path}: the delta cannot be applied: {e}")))?;
            // What is left after END (nothing, normally) is skipped by advance.
            previous = next;
        }
        io::Write::flush(&mut previous).map_err(PluginError::from_io)?;
        Ok(previous)
    }
}

impl plugin_sdk::Reader for DupReader {
    fn next(&mut self) -> Result<Option<Entry>, PluginError> {
        match std::mem::replace(&mut self.content, Content::None) {
            Content::Stream(i) | Content::Patching { set: i, .. } | Content::PatchingCopied { set: i, .. } => {
                self.sets[i].advance()?
            }
            Content::Forward { base, set, .. } => {
                self.sets[base].advance()?;
                self.sets[set].advance()?;
            }
            Content::None => {}
        }
        loop {
            let Some(min) = self
                .sets
                .iter()
                .filter_map(|s| s.head.as_ref().map(|h| &h.path))
                .min_by(|a, b| cmp_index(a, b))
                .cloned()
            else {
                return Ok(None);
            };
            let at: Vec<usize> =
                (0..self.sets.len()).filter(|&i| self.sets[i].head.as_ref().is_some_and(|h| h.path == min)).collect();
            // The newest entry that is not a delta is where the path's
            // history starts; deltas after it patch it (normalize_ps).
            let start = at.iter().rposition(|&i| self.sets[i].head.as_ref().expect("a head").change != Change::Diff);
            let deleted_or_unwanted = !under(&min, &self.prefix)
                || start.is_some_and(|p| self.sets[at[p]].head.as_ref().expect("a head").change == Change::Deleted);
            if deleted_or_unwanted {
                for &i in &at {
                    self.sets[i].advance()?;
                }
                continue;
            }
            let Some(p) = start else {
                return Err(PluginError::Corrupt(format!(
                    "{}: a delta without an earlier version in the chain",
                    String::from_utf8_lossy(&min)
                )));
            };
            let b = at[p];
            for &i in &at[..p] {
                self.sets[i].advance()?;
            }
            let newest = *at.last().expect("at least one");
            let mut e = entry(min.clone(), &self.sets[newest].head.as_ref().expect("a head").header)?;
            let diffs = &at[p + 1..];
            let head = self.sets[b].head.as_ref().expect("a head");
            if diffs.is_empty() {
                if e.meta.kind == EntryKind::File && !head.multivol {
                    e.meta.size = head.header.size;
                }
                self.content = Content::Stream(b);
                return Ok(Some(e));
            }
            if self.with_content && e.meta.kind == EntryKind::File {
                let (&last, earlier) = diffs.split_last().expect("diffs is not empty");
                if earlier.is_empty() {
                    // One delta: most are in order (a file changed in place),
                    // and then the snapshot streams straight through it.
                    let mut delta = ScratchFile::create()?;
                    io::copy(&mut self.sets[last], &mut delta).map_err(PluginError::from_io)?;
                    io::Write::flush(&mut delta).map_err(PluginError::from_io)?;
                    let mut check = Sequential { base: delta, pos: 0 };
                    let in_order = delta::copies_in_order(&mut check).map_err(|e| {
                        PluginError::Corrupt(format!(
                            "{}: the delta cannot be read: {e}",
                            String::from_utf8_lossy(&min)
                        ))
                    })?;
                    let delta = Sequential { base: check.base, pos: 0 };
                    if in_order {
                        self.content = Content::Forward { delta, patch: Patch::new(), base: b, base_pos: 0, set: last };
                    } else {
                        let base = self.patch(b, &[])?;
                        self.sets[b].advance()?;
                        self.content = Content::PatchingCopied { base, delta, patch: Patch::new(), set: last };
                    }
                    return Ok(Some(e));
                }
                let base = self.patch(b, earlier)?;
                for &i in &at[p..at.len() - 1] {
                    self.sets[i].advance()?;
                }
                // The newest delta's set advances when the content is done.
                self.content = Content::Patching { base, patch: Patch::new(), set: last };
                return Ok(Some(e));
            }
            for &i in &at[p..] {
                self.sets[i].advance()?;
            }
            return Ok(Some(e));
        }
    }

    fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        let max = max.min(4 << 20);
        let sets = &mut self.sets;
        match &mut self.content {
            Content::None => Ok(Vec::new()),
            Content::Stream(i) => plugin_sdk::fill_with(|buf| sets[*i].read(buf).map_err(PluginError::into_io), max)
                .map_err(PluginError::from_io),
            Content::Patching { base, patch, set } => {
                let path = String::from_utf8_lossy(&sets[*set].head.as_ref().expect("a head").path).into_owned();
                plugin_sdk::fill_with(|buf| patch.read(base, &mut sets[*set], buf), max)
                    .map_err(|e| PluginError::Corrupt(format!("{path}: the delta cannot be applied: {e}")))
            }
            Content::PatchingCopied { base, delta, patch, set } => {
                let path = String::from_utf8_lossy(&sets[*set].head.as_ref().expect("a head").path).into_owned();
                plugin_sdk::fill_with(|buf| patch.read(base, delta, buf), max)
                    .map_err(|e| PluginError::Corrupt(format!("{path}: the delta cannot be applied: {e}")))
            }
            Content::Forward { delta, patch, base, base_pos, set } => {
                let path = String::from_utf8_lossy(&sets[*set].head.as_ref().expect("a head").path).into_owned();
                let stream = &mut sets[*base];
                plugin_sdk::fill_with(|buf| patch.read(&mut Forward { inner: stream, pos: base_pos }, delta, buf), max)
                    .map_err(|e| PluginError::Corrupt(format!("{path}: the delta cannot be applied: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_the_headers_attributes() {
        let attributes = vec![("maildir.info".to_string(), "2,S".to_string())];
        let header = Header {
            name: b"diff/cur/msg".to_vec(),
            link_target: None,
            typeflag: b'0',
            mode: 0o600,
            uid: 1,
            gid: 2,
            mtime: 3,
            size: 8,
            device: None,
            attributes: attributes.clone(),
            file_size: None,
        };
        let e = entry(b"cur/msg".to_vec(), &header).unwrap();
        assert_eq!((e.meta.kind, e.meta.mode, e.attributes), (EntryKind::File, 0o600, attributes));
    }
}
