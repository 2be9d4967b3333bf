//! A set being written: volumes, then the sigtar, then the manifest, the
//! order duplicity uploads in (the manifest is the commit marker).
//!
//! A full set stores every entry. An incremental walks the source against
//! the chain's merged signatures (spec §4.4): an unchanged entry is neither
//! read nor written, a changed regular file is an rsync delta against its
//! old signature, anything else new or changed is a snapshot, and every old
//! path the source no longer has gets a `deleted/` entry.

use super::store::{MetadataWriter, Sealing};
use crate::format::delta::DeltaWriter;
use crate::format::difftar::{DiffTarWriter, VolumeStore};
use crate::format::entries::{Collated, SigEntry, Signed, cmp_index};
use crate::format::manifest::{Change, Manifest};
use crate::format::names::{Kind, name};
use crate::format::signature::{STRONG_LEN, block_len};
use crate::format::tarentry::{Prefix, TarKind, TarMeta, entry_name, footer, padding, write_header};
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

    fn sigtar_entry(&mut self, name: &[u8], meta: &TarMeta, data: &[u8]) -> Result<(), PluginError> {
        let mut bytes = Vec::with_capacity(1024 + data.len());
        write_header(&mut bytes, name, meta, data.len() as u64).map_err(io)?;
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
                    self.sigtar_entry(&sig_name, &TarMeta::deleted(), &[])?;
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
        let old = self.catch_up(Some(&entry.path))?;
        if let Some(old) = &old
            && unchanged(&old.meta, &meta)
        {
            return Ok(false);
        }
        self.changed += 1;
        let change = if old.is_some() { Change::Changed } else { Change::New };
        if meta.kind == TarKind::Regular {
            let encoder = match old.map(|o| o.signed) {
                Some(Signed::File(sig)) => Encoder::Delta(
                    DeltaWriter::new(sig).map_err(|e| PluginError::Corrupt(format!("the chain's signatures: {e}")))?,
                ),
                _ => Encoder::Snapshot,
            };
            self.volumes.begin_file(&entry.path, matches!(encoder, Encoder::Delta(_)), meta.clone());
            self.current = Some(Current {
                signature: Signer::new(block_len(entry.meta.size), STRONG_LEN)?,
                path: entry.path,
                meta,
                encoder,
                change,
                written: 0,
            });
            return Ok(true);
        }
        self.volumes.add(Prefix::Snapshot, &entry.path, &meta).map_err(io)?;
        let is_dir = meta.kind == TarKind::Directory;
        let sig_name = entry_name(Prefix::Snapshot, &entry.path, is_dir, true);
        self.sigtar_entry(&sig_name, &meta, &[])?;
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
        self.sigtar_entry(&sig_name, &current.meta, &signature)?;
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
