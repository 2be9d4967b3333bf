//! `file://` targets: a directory on this machine (or a mounted share).

use crate::{MAX_SMALL, ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary objects start with this, so listings skip them and a later run
/// can recognise (and remove) the debris of a killed one.
const TEMP_PREFIX: &str = ".orchestrator-tmp-";

/// The content of an object being created exclusively (a run lock) before
/// it is linked to its name. Runs that do not hold the lock write these, so
/// the holder's sweep removes only old ones: they live for milliseconds.
const NEW_PREFIX: &str = ".orchestrator-new-";

/// Age after which a [`NEW_PREFIX`] file is debris.
const NEW_DEBRIS_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Objects and the directories made for them are the backup user's alone,
/// as on `sftp://` targets: a cache holds plaintext manifests and
/// signatures (every path, owner and size) even of encrypted archives.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// A directory holding the target's objects.
#[derive(Debug)]
pub struct FileStorage {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound(format!("{}: no such object", path.display()))
    } else {
        StorageError::Io(format!("{what} {}: {e}", path.display()))
    }
}

impl FileStorage {
    /// The backend for `file:///abs/path`.
    pub fn from_url(url: &str) -> Result<FileStorage, StorageError> {
        let path = url.strip_prefix("file://").unwrap_or(url);
        if !path.starts_with('/') {
            return Err(StorageError::Config(format!("target `{url}` must be an absolute path: file:///path")));
        }
        Ok(FileStorage { root: PathBuf::from(path) })
    }

    /// Where the target lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new temporary file next to where object `name` goes.
    fn temp_for(&self, name: &str, prefix: &str) -> Result<(File, PathBuf, PathBuf), StorageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dest = self.root.join(name);
        let dir = dest.parent().expect("object names have a parent").to_path_buf();
        fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(&dir).map_err(|e| io("creating", &dir, e))?;
        let temp = dir.join(format!("{prefix}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp)
            .map_err(|e| io("creating", &temp, e))?;
        Ok((file, temp, dest))
    }

    fn delete_path(&self, path: &Path) -> Result<(), StorageError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", path, e)),
        }
    }
}

/// Open an object for reading, or `None` if there is none. Whoever can
/// write the target can put anything at an object's name: a symlink is not
/// followed (to a host file, or /dev/zero), a fifo is not waited on
/// (`O_NONBLOCK`, which changes nothing for a regular file), and only a
/// regular file is opened.
fn open_regular(path: &Path) -> Result<Option<(File, fs::Metadata)>, StorageError> {
    let file = match File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(StorageError::Io(format!(
                "{} is a symbolic link, which the host never follows in a target; remove it",
                path.display()
            )));
        }
        Err(e) => return Err(io("opening", path, e)),
    };
    let meta = file.metadata().map_err(|e| io("reading", path, e))?;
    if !meta.is_file() {
        return Err(StorageError::Io(format!("{} is not a regular file; remove it", path.display())));
    }
    Ok(Some((file, meta)))
}

impl Storage for FileStorage {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
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
                // Temporary objects and the host's own (the run lock).
                if name.to_string_lossy().starts_with(crate::RESERVED_PREFIX) {
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

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        let (file, temp, dest) = self.temp_for(name, TEMP_PREFIX)?;
        Ok(Box::new(FileSink { file: Some(file), temp, dest }))
    }

    /// Create-exclusive: the content is written and synced under a temporary
    /// name, then hard-linked to the final name, which fails if the name
    /// exists; so the object appears whole, and only if no other has it.
    /// Where hard links are not supported, `O_EXCL` on the final name.
    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        let (mut file, temp, dest) = self.temp_for(name, NEW_PREFIX)?;
        let written = file.write_all(data).and_then(|()| file.sync_all());
        drop(file);
        let linked = written.and_then(|()| fs::hard_link(&temp, &dest));
        let _ = fs::remove_file(&temp);
        let created = match linked {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS)) => {
                match File::options().write(true).create_new(true).mode(FILE_MODE).open(&dest) {
                    Ok(mut f) => {
                        f.write_all(data).and_then(|()| f.sync_all()).map_err(|e| io("writing", &dest, e))?;
                        true
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(io("creating", &dest, e)),
                }
            }
            Err(e) => return Err(io("creating", &dest, e)),
        };
        if created
            && let Some(dir) = dest.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(created)
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        let path = self.root.join(name);
        let Some((mut file, meta)) = open_regular(&path)? else { return Ok(None) };
        if meta.len() > MAX_SMALL {
            return Err(crate::too_large(path.display(), meta.len()));
        }
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, MAX_SMALL), &mut data)
            .map_err(|e| io("reading", &path, e))?;
        Ok(Some((data, modified)))
    }

    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError> {
        let mut removed = 0;
        let mut stack = vec![self.root.join(prefix)];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("listing", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("listing", &dir, e))?;
                let path = entry.path();
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let old = || {
                    let modified = entry.metadata().and_then(|m| m.modified());
                    modified.is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= NEW_DEBRIS_AGE))
                };
                if file_name.starts_with(TEMP_PREFIX) || (file_name.starts_with(NEW_PREFIX) && old()) {
                    self.delete_path(&path)?;
                    removed += 1;
                } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                }
            }
        }
        Ok(removed)
    }

    fn get(&self, name: &str) -> Result<Box<dyn std::io::Read + Send + Sync>, StorageError> {
        let path = self.root.join(name);
        match open_regular(&path)? {
            Some((file, _)) => Ok(Box::new(file)),
            None => Err(StorageError::NotFound(format!("{}: no such object", path.display()))),
        }
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.delete_path(&self.root.join(name))
    }

    fn locate(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

struct FileSink {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
}

impl ObjectSink for FileSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let file = self.file.as_mut().expect("open until commit");
        file.write_all(data).map_err(|e| io("writing", &self.dest, e))
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
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
