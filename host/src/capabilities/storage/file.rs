//! `file://` targets: a directory on this machine (or a mounted share).

use super::ObjectSink;
use crate::runtime::bindings::PluginError;
use crate::runtime::bindings::sink::orchestrator::plugin::storage::ObjectInfo;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary objects start with this, so listings skip them and a later run
/// can recognise (and remove) the debris of a killed one.
const TEMP_PREFIX: &str = ".orchestrator-tmp-";

/// A directory holding the target's objects.
#[derive(Debug)]
pub struct FileBackend {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> PluginError {
    if e.kind() == std::io::ErrorKind::NotFound {
        PluginError::NotFound(format!("{}: no such object", path.display()))
    } else {
        PluginError::Io(format!("{what} {}: {e}", path.display()))
    }
}

impl FileBackend {
    /// The backend for `file:///abs/path`.
    pub fn from_url(url: &str) -> Result<FileBackend, String> {
        let path = url.strip_prefix("file://").unwrap_or(url);
        if !path.starts_with('/') {
            return Err(format!("target `{url}` must be an absolute path: file:///path"));
        }
        Ok(FileBackend { root: PathBuf::from(path) })
    }

    /// Where the target lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, PluginError> {
        let base = self.root.join(prefix);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("listing", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("listing", &dir, e))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(TEMP_PREFIX) {
                    continue;
                }
                let path = entry.path();
                let meta = entry.metadata().map_err(|e| io("reading", &path, e))?;
                if meta.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&base) {
                    out.push(ObjectInfo { name: rel.to_string_lossy().into_owned(), size: meta.len() });
                }
            }
        }
        Ok(out)
    }

    pub(super) fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, PluginError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dest = self.root.join(name);
        let dir = dest.parent().expect("object names have a parent").to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let file = File::create_new(&temp).map_err(|e| io("creating", &temp, e))?;
        Ok(Box::new(FileSink { file: Some(file), temp, dest }))
    }

    pub(super) fn get(&self, name: &str) -> Result<Box<dyn std::io::Read + Send + Sync>, PluginError> {
        let path = self.root.join(name);
        let file = File::open(&path).map_err(|e| io("opening", &path, e))?;
        Ok(Box::new(file))
    }

    pub(super) fn delete(&self, name: &str) -> Result<(), PluginError> {
        let path = self.root.join(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", &path, e)),
        }
    }
}

struct FileSink {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
}

impl ObjectSink for FileSink {
    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        let file = self.file.as_mut().expect("open until commit");
        file.write_all(data).map_err(|e| io("writing", &self.dest, e))
    }

    fn commit(mut self: Box<Self>) -> Result<(), PluginError> {
        let file = self.file.take().expect("open until commit");
        // Durable before visible: a crash after the rename must not leave an
        // object whose bytes never reached the disk.
        file.sync_all().map_err(|e| io("writing", &self.dest, e))?;
        drop(file);
        if let Err(e) = fs::rename(&self.temp, &self.dest) {
            let _ = fs::remove_file(&self.temp);
            return Err(io("storing", &self.dest, e));
        }
        if let Some(dir) = self.dest.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}
