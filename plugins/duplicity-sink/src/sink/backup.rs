//! A full set being written: volumes, then the sigtar, then the manifest,
//! the order duplicity uploads in (the manifest is the commit marker).

use crate::format::difftar::{DiffTarWriter, VolumeStore};
use crate::format::manifest::{Change, Manifest};
use crate::format::names::{Encoding, Kind, name};
use crate::format::signature::SignatureWriter;
use crate::format::tarentry::{Prefix, TarKind, TarMeta, entry_name, footer, padding, write_header};
use plugin_sdk::prelude::*;
use plugin_sdk::storage::{self, Encoding as Stored, ObjectWriter};
use std::io::{self, Write};

/// Volumes of one full set, stored through the host.
pub struct Volumes {
    time: i64,
    /// Bytes stored in the volumes so far.
    bytes: u64,
}

impl VolumeStore for Volumes {
    type Writer = ObjectWriter;

    fn open(&mut self, number: u32) -> io::Result<ObjectWriter> {
        // Without encryption duplicity gzips volumes and signatures; the host
        // compresses natively on the way to storage.
        let object = name(&Kind::FullVolume { time: self.time, volume: number }, Encoding::Gzip);
        storage::put_encoded(&object, &Stored::Gzip).map_err(PluginError::into_io)
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

/// The file whose content is arriving.
struct Current {
    path: Vec<u8>,
    meta: TarMeta,
    signature: SignatureWriter,
    written: u64,
}

/// A backup in progress.
pub struct DupBackup {
    time: i64,
    volumes: DiffTarWriter<Volumes>,
    sigtar: ObjectWriter,
    sigtar_len: u64,
    current: Option<Current>,
    files: Vec<(Change, Vec<u8>)>,
    entries: u64,
}

fn io(e: io::Error) -> PluginError {
    PluginError::from_io(e)
}

impl DupBackup {
    /// Start the full set taken at `time`.
    pub fn new(time: i64, volsize: u64) -> Result<DupBackup, PluginError> {
        let sigtar = storage::put_encoded(&name(&Kind::FullSignatures { time }, Encoding::Gzip), &Stored::Gzip)?;
        Ok(DupBackup {
            time,
            volumes: DiffTarWriter::new(Volumes { time, bytes: 0 }, volsize),
            sigtar,
            sigtar_len: 0,
            current: None,
            files: Vec::new(),
            entries: 0,
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
}

impl plugin_sdk::Backup for DupBackup {
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        let Some(meta) = tar_meta(&entry.meta) else { return Ok(false) };
        self.entries += 1;
        if meta.kind == TarKind::Regular {
            self.volumes.begin_file(&entry.path, false, meta.clone());
            self.current =
                Some(Current { signature: SignatureWriter::new(entry.meta.size), path: entry.path, meta, written: 0 });
            return Ok(true);
        }
        self.volumes.add(Prefix::Snapshot, &entry.path, &meta).map_err(io)?;
        let is_dir = meta.kind == TarKind::Directory;
        let sig_name = entry_name(Prefix::Snapshot, &entry.path, is_dir, true);
        self.sigtar_entry(&sig_name, &meta, &[])?;
        Ok(false)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        let current = self.current.as_mut().ok_or_else(|| PluginError::Other("content without a file".into()))?;
        current.signature.update(data);
        current.written += data.len() as u64;
        self.volumes.write(data).map_err(io)
    }

    fn end_entry(&mut self, status: ContentStatus) -> Result<(), PluginError> {
        let current = self.current.take().ok_or_else(|| PluginError::Other("end of content without a file".into()))?;
        if let ContentStatus::Unreadable(reason) = &status {
            // Whatever was read is stored; the file is named so a person knows
            // this copy is incomplete.
            plugin_sdk::warn!("{reason}; stored the {} bytes read before the error", current.written);
        }
        self.volumes.end_file().map_err(io)?;
        let signature = current.signature.finish();
        let sig_name = entry_name(Prefix::Signature, &current.path, false, true);
        self.sigtar_entry(&sig_name, &current.meta, &signature)?;
        self.files.push((Change::New, current.path));
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<BackupSet, PluginError> {
        let DupBackup { time, volumes, mut sigtar, sigtar_len, files, entries, .. } = *self;
        let (records, store) = volumes.finish().map_err(io)?;
        sigtar.write_all(&footer(sigtar_len)).map_err(io)?;
        let sig_stored = sigtar.finish()?;
        let manifest = Manifest { hostname: None, localdir: None, volumes: records, files };
        // Manifests are never gzipped (spec §1.1).
        let mut object = storage::put(&name(&Kind::FullManifest { time }, Encoding::Gzip))?;
        object.write_all(&manifest.to_bytes()).map_err(io)?;
        let manifest_stored = object.finish()?;
        let volume_count = manifest.volumes.len() as u32;
        let volume_bytes = store.bytes;
        Ok(BackupSet {
            kind: SetKind::Full,
            time,
            volumes: volume_count,
            size: volume_bytes + sig_stored.size + manifest_stored.size,
            changed_entries: Some(entries),
        })
    }
}
