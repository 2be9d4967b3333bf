//! A set being written: volumes, then the sigtar, then the manifest, the
//! order duplicity uploads in (the manifest is the commit marker).
//!
//! A full set stores every entry. An incremental walks the source against
//! the chain's merged signatures (spec §4.4): an unchanged entry is neither
//! read nor written, a changed regular file is an rsync delta against its
//! old signature, anything else new or changed is a snapshot, and every old
//! path the source no longer has gets a `deleted/` entry.
//!
//! Attributes are part of an entry's state: a changed, added or removed
//! attribute is a change. They go in PAX records of the entry's headers, and
//! in the sigtar a file with attributes also records its size. A regular
//! file whose size and mtime equal the chain's but whose attributes, mode or
//! owner changed is stored without reading it: a `diff/` whose delta copies
//! the whole previous version, with the new header, and the old signature
//! carried into the new sigtar. (duplicity's sigtars hold no file size, so a
//! file recorded without one is read and diffed as before.)

use super::store::{MetadataWriter, Sealing};
use crate::format::delta::{DeltaWriter, copy_all};
use crate::format::difftar::{DiffTarWriter, VolumeStore};
use crate::format::entries::{Collated, SigEntry, Signed, cmp_index};
use crate::format::manifest::{Change, Manifest};
use crate::format::names::{Kind, name};
use crate::format::signature::{STRONG_LEN, block_len};
use crate::format::tarentry::{
    Prefix, TarKind, TarMeta, entry_name, footer, normalize_attributes, padding, pax_records, write_header_pax,
};
use plugin_sdk::prelude::*;
use plugin_sdk::rsync::Signer;
use plugin_sdk::storage::{self, ObjectWriter};
use std::cmp::Ordering;
use std::io::{self, Write};

/// Full or incremental, with the times that name the set.
#[derive(Debug, Clone, Copy)]
pub enum SetKindTimes {
    /// A full set at `time`.
    Full { time: i64 },
    /// An incremental from the chain's end `start` to `end`.
    Inc { start: i64, end: i64 },
}

impl SetKindTimes {
    fn volume(self, volume: u32) -> Kind {
        match self {
            SetKindTimes::Full { time } => Kind::FullVolume { time, volume },
            SetKindTimes::Inc { start, end } => Kind::IncVolume { start, end, volume },
        }
    }
    fn manifest(self) -> Kind {
        match self {
            SetKindTimes::Full { time } => Kind::FullManifest { time },
            SetKindTimes::Inc { start, end } => Kind::IncManifest { start, end },
        }
    }
    fn signatures(self) -> Kind {
        match self {
            SetKindTimes::Full { time } => Kind::FullSignatures { time },
            SetKindTimes::Inc { start, end } => Kind::NewSignatures { start, end },
        }
    }
    fn time(self) -> i64 {
        match self {
            SetKindTimes::Full { time } => time,
            SetKindTimes::Inc { end, .. } => end,
        }
    }
}

/// Volumes of one set, stored through the host.
pub struct Volumes {
    set: SetKindTimes,
    sealing: Sealing,
    /// Bytes stored in the volumes so far.
    bytes: u64,
}

impl VolumeStore for Volumes {
    type Writer = ObjectWriter;

    fn open(&mut self, number: u32) -> io::Result<ObjectWriter> {
        // gzip or OpenPGP is done by the host natively on the way to storage.
        let object = name(&self.set.volume(number), self.sealing.suffix());
        storage::put_encoded(&object, &self.sealing.data()).map_err(PluginError::into_io)
    }

    fn close(&mut self, _number: u32, writer: ObjectWriter) -> io::Result<String> {
        let stored = writer.finish().map_err(PluginError::into_io)?;
        self.bytes += stored.size;
        Ok(stored.sha1)
    }
}

fn tar_meta(meta: &Metadata) -> Option<TarMeta> {
    let kind = match meta.kind {
        EntryKind::File => TarKind::Regular,
        EntryKind::Directory => TarKind::Directory,
        EntryKind::Symlink => TarKind::Symlink,
        EntryKind::Fifo => TarKind::Fifo,
        EntryKind::CharDevice => TarKind::CharDevice,
        EntryKind::BlockDevice => TarKind::BlockDevice,
        EntryKind::Socket => return None,
    };
    Some(TarMeta {
        kind,
        mode: meta.mode & 0o7777,
        uid: meta.uid,
        gid: meta.gid,
        mtime: meta.mtime,
        link_target: meta.symlink_target.clone(),
        device: meta.device,
    })
}

/// duplicity's `ROPath.__eq__` (spec §4.4): what makes an entry unchanged.
/// Size is not compared, as in duplicity: a rewrite that keeps the mtime is
/// not seen by either.
fn unchanged(old: &TarMeta, new: &TarMeta) -> bool {
    if old.kind != new.kind {
        return false;
    }
    let owner_mode = old.mode == new.mode && old.uid == new.uid && old.gid == new.gid;
    match new.kind {
        TarKind::Regular | TarKind::Directory | TarKind::Fifo => owner_mode && old.mtime == new.mtime.max(0),
        TarKind::Symlink => old.link_target == new.link_target,
        TarKind::CharDevice | TarKind::BlockDevice => owner_mode && old.device == new.device,
    }
}

/// The PAX records of an entry's sigtar header: its attributes and, for a
/// regular file that has attributes, its size; none without attributes, so
/// such entries are written as duplicity writes them.
fn sig_pax(attributes: &[(String, String)], file_size: Option<u64>) -> Vec<u8> {
    if attributes.is_empty() { Vec::new() } else { pax_records(attributes, file_size) }
}

/// The size of the chain's version of a regular file when its content is
/// taken to be unchanged: the chain recorded a size, and it and the mtime
/// (whole seconds, as stored) equal the new ones; the signature must agree
/// with that size. `None` when the file must be read.
fn same_content(old: &SigEntry, new: &TarMeta, new_size: u64) -> Option<u64> {
    let Signed::File(sig) = &old.signed else { return None };
    let size = old.size?;
    if old.meta.kind != TarKind::Regular || old.meta.mtime != new.mtime.max(0) || size != new_size {
        return None;
    }
    let word = |i: usize| sig.get(i..i + 4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as u64);
    let (block, strong) = (word(4)?, word(8)?);
    if word(0)? != 0x7273_0136 || block == 0 {
        return None;
    }
    let blocks = (sig.len() as u64 - 12) / (4 + strong);
    (blocks == size.div_ceil(block) && (sig.len() as u64 - 12).is_multiple_of(4 + strong)).then_some(size)
}

/// What an incremental does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Equal to the chain's: neither read nor written.
    Unchanged,
    /// A regular file whose content is taken as the chain's (`size` bytes)
    /// while its metadata or attributes changed: stored without reading it.
    CopyAll { size: u64 },
    /// Stored in full (a file's content is read: a snapshot, or a delta
    /// against the chain's signature).
    Store,
}

/// The plan for an entry with metadata `meta`, content size `size` and
/// (normalized) `attributes`, given the chain's version `old`.
fn plan(old: Option<&SigEntry>, meta: &TarMeta, size: u64, attributes: &[(String, String)]) -> Plan {
    let Some(old) = old else { return Plan::Store };
    if unchanged(&old.meta, meta) && old.attributes == attributes {
        return Plan::Unchanged;
    }
    match meta.kind {
        TarKind::Regular => same_content(old, meta, size).map_or(Plan::Store, |size| Plan::CopyAll { size }),
        _ => Plan::Store,
    }
}

/// How the content of the current file is stored.
enum Encoder {
    Snapshot,
    Delta(DeltaWriter),
}

/// The file whose content is arriving.
struct Current {
    path: Vec<u8>,
    meta: TarMeta,
    /// Hashed by the host, natively.
    signature: Signer,
    encoder: Encoder,
    change: Change,
    written: u64,
    attributes: Vec<(String, String)>,
}

/// A set being written.
pub struct DupBackup {
    set: SetKindTimes,
    sealing: Sealing,
    volumes: DiffTarWriter<Volumes>,
    sigtar: MetadataWriter,
    sigtar_len: u64,
    /// The chain's state before this run (incrementals only).
    old: Option<Collated>,
    old_head: Option<SigEntry>,
    current: Option<Current>,
    files: Vec<(Change, Vec<u8>)>,
    changed: u64,
    delta_buf: Vec<u8>,
}

fn io(e: io::Error) -> PluginError {
    PluginError::from_io(e)
}

fn corrupt_sigs(e: io::Error) -> PluginError {
    PluginError::Corrupt(format!("the chain's signatures cannot be read: {e}"))
}

impl DupBackup {
    /// Start a set: a full one when `old` is `None`, else an incremental
    /// against the chain state `old`.
    pub fn new(
        set: SetKindTimes,
        sealing: Sealing,
        volsize: u64,
        mut old: Option<Collated>,
    ) -> Result<DupBackup, PluginError> {
        let sigtar = MetadataWriter::put(&sealing, &set.signatures())?;
        let old_head = match old.as_mut() {
            Some(o) => o.next_entry().map_err(corrupt_sigs)?,
            None => None,
        };
        Ok(DupBackup {
            set,
            volumes: DiffTarWriter::new(Volumes { set, sealing: sealing.clone(), bytes: 0 }, volsize),
            sealing,
            sigtar,
            sigtar_len: 0,
            old,
            old_head,
            current: None,
            files: Vec::new(),
            changed: 0,
            delta_buf: Vec::new(),
        })
    }

    fn sigtar_entry(&mut self, name: &[u8], meta: &TarMeta, pax: &[u8], data: &[u8]) -> Result<(), PluginError> {
        let mut bytes = Vec::with_capacity(1024 + pax.len() + data.len());
        write_header_pax(&mut bytes, name, meta, data.len() as u64, pax).map_err(io)?;
        bytes.extend_from_slice(data);
        bytes.extend(std::iter::repeat_n(0u8, padding(data.len() as u64)));
        self.sigtar_len += bytes.len() as u64;
        self.sigtar.write_all(&bytes).map_err(io)
    }

    fn advance_old(&mut self) -> Result<Option<SigEntry>, PluginError> {
        let next = match self.old.as_mut() {
            Some(o) => o.next_entry().map_err(corrupt_sigs)?,
            None => None,
        };
        Ok(std::mem::replace(&mut self.old_head, next))
    }

    /// Record as deleted every old path that sorts before `path` (all of
    /// them when `None`), and return the old entry at `path` if there is one.
    fn catch_up(&mut self, path: Option<&[u8]>) -> Result<Option<SigEntry>, PluginError> {
        while let Some(head) = &self.old_head {
            let order = path.map_or(Ordering::Less, |p| cmp_index(&head.path, p));
            match order {
                Ordering::Less => {
                    let gone = self.advance_old()?.expect("a head");
                    self.volumes.add(Prefix::Deleted, &gone.path, &TarMeta::deleted()).map_err(io)?;
                    let sig_name = entry_name(Prefix::Deleted, &gone.path, false, true);
                    self.sigtar_entry(&sig_name, &TarMeta::deleted(), &[], &[])?;
                    self.files.push((Change::Deleted, gone.path));
                    self.changed += 1;
                }
                Ordering::Equal => return self.advance_old(),
                Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }
}

impl plugin_sdk::Backup for DupBackup {
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        // Sockets are never stored; an old entry at a socket's path is
        // recorded as deleted when the walk passes it.
        let Some(meta) = tar_meta(&entry.meta) else { return Ok(false) };
        let attributes = normalize_attributes(entry.attributes);
        let old = self.catch_up(Some(&entry.path))?;
        let plan = plan(old.as_ref(), &meta, entry.meta.size, &attributes);
        if plan == Plan::Unchanged {
            return Ok(false);
        }
        self.changed += 1;
        let change = if old.is_some() { Change::Changed } else { Change::New };
        if let (Plan::CopyAll { size }, Some(SigEntry { signed: Signed::File(signature), .. })) = (plan, &old) {
            // Only metadata or attributes changed: the new header over a
            // delta that copies the previous version whole, and the old
            // signature, which still describes the content.
            self.volumes.begin_file_pax(&entry.path, true, meta.clone(), pax_records(&attributes, None));
            self.volumes.write(&copy_all(size)).map_err(io)?;
            self.volumes.end_file().map_err(io)?;
            let sig_name = entry_name(Prefix::Signature, &entry.path, false, true);
            self.sigtar_entry(&sig_name, &meta, &sig_pax(&attributes, Some(size)), signature)?;
            self.files.push((change, entry.path));
            return Ok(false);
        }
        if meta.kind == TarKind::Regular {
            let encoder = match old.map(|o| o.signed) {
                Some(Signed::File(sig)) => Encoder::Delta(
                    DeltaWriter::new(sig).map_err(|e| PluginError::Corrupt(format!("the chain's signatures: {e}")))?,
                ),
                _ => Encoder::Snapshot,
            };
            let pax = pax_records(&attributes, None);
            self.volumes.begin_file_pax(&entry.path, matches!(encoder, Encoder::Delta(_)), meta.clone(), pax);
            self.current = Some(Current {
                signature: Signer::new(block_len(entry.meta.size), STRONG_LEN)?,
                path: entry.path,
                meta,
                encoder,
                change,
                written: 0,
                attributes,
            });
            return Ok(true);
        }
        self.volumes.add_pax(Prefix::Snapshot, &entry.path, &meta, &pax_records(&attributes, None)).map_err(io)?;
        let is_dir = meta.kind == TarKind::Directory;
        let sig_name = entry_name(Prefix::Snapshot, &entry.path, is_dir, true);
        self.sigtar_entry(&sig_name, &meta, &sig_pax(&attributes, None), &[])?;
        if self.old.is_some() {
            self.files.push((change, entry.path));
        }
        Ok(false)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        let current = self.current.as_mut().ok_or_else(|| PluginError::Other("content without a file".into()))?;
        current.signature.update(data)?;
        current.written += data.len() as u64;
        match &mut current.encoder {
            Encoder::Snapshot => self.volumes.write(data).map_err(io),
            Encoder::Delta(delta) => {
                delta.update(data, &mut self.delta_buf).map_err(io)?;
                let result = self.volumes.write(&self.delta_buf).map_err(io);
                self.delta_buf.clear();
                result
            }
        }
    }

    fn end_entry(&mut self, status: ContentStatus) -> Result<(), PluginError> {
        let current = self.current.take().ok_or_else(|| PluginError::Other("end of content without a file".into()))?;
        if let ContentStatus::Unreadable(reason) = &status {
            // Whatever was read is stored; the file is named so a person knows
            // this copy is incomplete.
            plugin_sdk::warn!("{reason}; stored the {} bytes read before the error", current.written);
        }
        if let Encoder::Delta(delta) = current.encoder {
            delta.finish(&mut self.delta_buf).map_err(io)?;
            self.volumes.write(&self.delta_buf).map_err(io)?;
            self.delta_buf.clear();
        }
        self.volumes.end_file().map_err(io)?;
        let signature = current.signature.finish()?;
        let sig_name = entry_name(Prefix::Signature, &current.path, false, true);
        let pax = sig_pax(&current.attributes, Some(current.written));
        self.sigtar_entry(&sig_name, &current.meta, &pax, &signature)?;
        self.files.push((current.change, current.path));
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<BackupSet, PluginError> {
        self.catch_up(None)?;
        let DupBackup { set, sealing, volumes, mut sigtar, sigtar_len, files, changed, old, .. } = *self;
        let (records, store) = volumes.finish().map_err(io)?;
        sigtar.write_all(&footer(sigtar_len)).map_err(io)?;
        let sig_stored = sigtar.finish()?;
        let manifest = Manifest { hostname: None, localdir: None, volumes: records, files };
        let mut object = MetadataWriter::put(&sealing, &set.manifest())?;
        object.write_all(&manifest.to_bytes()).map_err(io)?;
        let manifest_stored = object.finish()?;
        Ok(BackupSet {
            kind: if old.is_some() { SetKind::Incremental } else { SetKind::Full },
            time: set.time(),
            volumes: manifest.volumes.len() as u32,
            size: store.bytes + sig_stored.size + manifest_stored.size,
            changed_entries: Some(changed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: TarKind) -> TarMeta {
        TarMeta { kind, mode: 0o644, uid: 1, gid: 2, mtime: 100, link_target: None, device: None }
    }

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        normalize_attributes(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    /// The chain's version of a 20-byte file as a sigtar records it.
    fn old_file(attributes: &[(&str, &str)], size: Option<u64>) -> SigEntry {
        let content = vec![7u8; 20];
        SigEntry {
            path: b"cur/msg".to_vec(),
            meta: meta(TarKind::Regular),
            signed: Signed::File(crate::format::signature::one_shot(&content)),
            attributes: attrs(attributes),
            size,
        }
    }

    #[test]
    fn an_attribute_only_change_is_stored_without_the_content() {
        let flags = [("imap.flags", "\\Seen"), ("maildir.info", "2,S")];
        let old = old_file(&flags, Some(20));
        let file = meta(TarKind::Regular);
        assert_eq!(plan(Some(&old), &file, 20, &attrs(&flags)), Plan::Unchanged);
        // The order a source gives them in does not matter.
        let reversed = attrs(&[("maildir.info", "2,S"), ("imap.flags", "\\Seen")]);
        assert_eq!(plan(Some(&old), &file, 20, &reversed), Plan::Unchanged);
        let flagged = attrs(&[("imap.flags", "\\Flagged \\Seen"), ("maildir.info", "2,FS")]);
        assert_eq!(plan(Some(&old), &file, 20, &flagged), Plan::CopyAll { size: 20 });
        // Removed, and added, attributes are changes too.
        assert_eq!(plan(Some(&old), &file, 20, &attrs(&flags[..1])), Plan::CopyAll { size: 20 });
        assert_eq!(plan(Some(&old), &file, 20, &[]), Plan::CopyAll { size: 20 });
        let more = attrs(&[flags[0], flags[1], ("x.y", "")]);
        assert_eq!(plan(Some(&old), &file, 20, &more), Plan::CopyAll { size: 20 });
        // Mode and owner changes of a file whose size is recorded, too.
        assert_eq!(
            plan(Some(&old), &TarMeta { mode: 0o600, ..file.clone() }, 20, &attrs(&flags)),
            Plan::CopyAll { size: 20 }
        );
        assert_eq!(
            plan(Some(&old), &TarMeta { uid: 9, ..file.clone() }, 20, &attrs(&flags)),
            Plan::CopyAll { size: 20 }
        );
    }

    #[test]
    fn a_content_change_is_still_read() {
        let flags = [("maildir.info", "2,S")];
        let old = old_file(&flags, Some(20));
        let file = meta(TarKind::Regular);
        let flagged = attrs(&[("maildir.info", "2,FS")]);
        // A new mtime, or another size under the same mtime: the content is read.
        assert_eq!(plan(Some(&old), &TarMeta { mtime: 101, ..file.clone() }, 20, &flagged), Plan::Store);
        assert_eq!(plan(Some(&old), &TarMeta { mtime: 101, ..file.clone() }, 20, &attrs(&flags)), Plan::Store);
        assert_eq!(plan(Some(&old), &file, 21, &flagged), Plan::Store);
        // No size recorded (duplicity's sigtars, entries written without
        // attributes): read as before.
        assert_eq!(plan(Some(&old_file(&[], None)), &file, 20, &flagged), Plan::Store);
        assert_eq!(plan(Some(&old_file(&[], None)), &TarMeta { mode: 0o600, ..file.clone() }, 20, &[]), Plan::Store);
        // A signature that disagrees with the recorded size is not trusted.
        assert_eq!(plan(Some(&old_file(&flags, Some(5000))), &file, 5000, &flagged), Plan::Store);
        // Not a file before, or new: stored.
        let dir = SigEntry { meta: meta(TarKind::Directory), signed: Signed::Other, ..old_file(&flags, None) };
        assert_eq!(plan(Some(&dir), &file, 20, &flagged), Plan::Store);
        assert_eq!(plan(None, &file, 20, &flagged), Plan::Store);
        // Other kinds compare attributes too.
        let d = meta(TarKind::Directory);
        assert_eq!(plan(Some(&dir), &d, 0, &attrs(&flags)), Plan::Unchanged);
        assert_eq!(plan(Some(&dir), &d, 0, &flagged), Plan::Store);
    }

    #[test]
    fn sigtar_records_hold_the_size_only_with_attributes() {
        assert!(sig_pax(&[], Some(20)).is_empty());
        assert!(sig_pax(&[], None).is_empty());
        let records = String::from_utf8(sig_pax(&attrs(&[("maildir.info", "2,S")]), Some(20))).unwrap();
        assert_eq!(records, "38 ORCHESTRATOR.attr.maildir.info=2,S\n24 ORCHESTRATOR.size=20\n");
    }

    #[test]
    fn what_counts_as_unchanged() {
        let file = meta(TarKind::Regular);
        assert!(unchanged(&file, &file));
        assert!(!unchanged(&file, &TarMeta { mtime: 101, ..file.clone() }));
        assert!(!unchanged(&file, &TarMeta { mode: 0o600, ..file.clone() }));
        assert!(!unchanged(&file, &TarMeta { uid: 7, ..file.clone() }));
        assert!(!unchanged(&file, &meta(TarKind::Directory)));
        // Negative mtimes are stored as 0.
        assert!(unchanged(&TarMeta { mtime: 0, ..file.clone() }, &TarMeta { mtime: -5, ..file.clone() }));
        // A symlink is its target; mode and times are not restored anyway.
        let link = TarMeta { link_target: Some(b"a".to_vec()), ..meta(TarKind::Symlink) };
        assert!(unchanged(&link, &TarMeta { mtime: 5, ..link.clone() }));
        assert!(!unchanged(&link, &TarMeta { link_target: Some(b"b".to_vec()), ..link.clone() }));
        let dev = TarMeta { device: Some((1, 3)), ..meta(TarKind::CharDevice) };
        assert!(unchanged(&dev, &TarMeta { mtime: 5, ..dev.clone() }));
        assert!(!unchanged(&dev, &TarMeta { device: Some((1, 5)), ..dev.clone() }));
    }
}
