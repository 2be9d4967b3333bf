//! The write side, what `sftp://` storage needs: objects appear whole or not
//! at all, and a crash leaves only temporaries a later run can recognise.

use crate::Sftp;
use crate::error::{FX_OP_UNSUPPORTED, SftpError};
use crate::posix_rename::PosixRename;
use ssh2::{OpenFlags, OpenType};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary objects start with this (as in the `file://` backend), so
/// listings skip them and a later run can remove a killed run's debris.
pub const TEMP_PREFIX: &str = ".orchestrator-tmp-";

/// Objects are private to the backup user: even encrypted archives show
/// sizes and times, and `encryption = "none"` ones show everything.
const NEW_FILE_MODE: i32 = 0o600;
const NEW_DIR_MODE: i32 = 0o700;

/// libssh2 sends at most 30000 bytes per SFTP write but pipelines all of one
/// call's data, so large writes keep the link busy.
const WRITE_CHUNK: usize = 1 << 20;

impl Sftp {
    /// A writer for `path` that writes to a temporary name in the same
    /// directory and renames it to `path` on [`AtomicWriter::commit`], so a
    /// reader sees the old object or the whole new one, never a part (see
    /// `rename_over` for servers without `posix-rename@openssh.com`).
    /// Dropped without a commit, it removes the temporary. The directory
    /// must exist ([`Sftp::mkdir_all`]).
    pub fn create_temp_and_rename(&self, path: impl AsRef<Path>) -> Result<AtomicWriter, SftpError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dest = path.as_ref().to_path_buf();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        // pid and time as well as the counter: other machines may write to
        // the same directory. EXCLUSIVE makes a clash an error, not a clobber.
        let temp_name =
            format!("{TEMP_PREFIX}{}-{nanos:08x}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let temp = dest.parent().unwrap_or(Path::new("")).join(temp_name);
        let file = self
            .raw()
            .open_mode(&temp, OpenFlags::WRITE | OpenFlags::EXCLUSIVE, NEW_FILE_MODE, OpenType::File)
            .map_err(|e| SftpError::from_op(self.target(), "creating", &temp, e))?;
        Ok(AtomicWriter { file: Some(BufWriter::with_capacity(WRITE_CHUNK, file)), sftp: self.clone(), temp, dest })
    }

    /// Create `path` holding `data` only if nothing has that name: `false`
    /// when something has (`O_EXCL` on the server). SFTP has no portable way
    /// to link a finished temporary to a name without replacing what is
    /// there, so the content is written under the final name: for the moment
    /// it takes, a reader may find it short. Its one user, the run lock,
    /// treats an unreadable lock as held until it has been untouched for a
    /// while. The directory must exist ([`Sftp::mkdir_all`]).
    pub fn create_exclusive(&self, path: impl AsRef<Path>, data: &[u8]) -> Result<bool, SftpError> {
        let path = path.as_ref();
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
        let mut file = match self.raw().open_mode(path, flags, NEW_FILE_MODE, OpenType::File) {
            Ok(file) => file,
            // SFTP v3 reports an existing name as a plain failure: ask.
            Err(e) => {
                return match self.raw().lstat(path) {
                    Ok(_) => Ok(false),
                    Err(_) => Err(SftpError::from_op(self.target(), "creating", path, e)),
                };
            }
        };
        let written = file.write_all(data).map_err(|e| SftpError::Remote {
            target: self.target().clone(),
            op: "writing",
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
        let synced = match file.fsync() {
            Err(e) if e.code() != ssh2::ErrorCode::SFTP(FX_OP_UNSUPPORTED) => {
                Err(SftpError::from_op(self.target(), "writing", path, e))
            }
            _ => Ok(()),
        };
        let closed = file.close().map_err(|e| SftpError::from_op(self.target(), "writing", path, e));
        written.and(synced).and(closed)?;
        Ok(true)
    }

    /// Remove file `path`; a missing one is a [`crate::ErrorKind::NotFound`]
    /// error, which a caller deleting debris may ignore.
    pub fn remove(&self, path: impl AsRef<Path>) -> Result<(), SftpError> {
        let path = path.as_ref();
        self.raw().unlink(path).map_err(|e| SftpError::from_op(self.target(), "removing", path, e))
    }

    /// Create directory `path` and its missing parents, as `mkdir -p`.
    pub fn mkdir_all(&self, path: impl AsRef<Path>) -> Result<(), SftpError> {
        let path = path.as_ref();
        if self.is_dir(path)? {
            return Ok(());
        }
        let mut current = PathBuf::new();
        for component in path.components() {
            current.push(component);
            if matches!(component, Component::RootDir | Component::CurDir | Component::ParentDir)
                || self.is_dir(&current)?
            {
                continue;
            }
            if let Err(e) = self.raw().mkdir(&current, NEW_DIR_MODE) {
                // Another writer may have made it meanwhile.
                if !self.is_dir(&current)? {
                    return Err(SftpError::from_op(self.target(), "creating directory", &current, e));
                }
            }
        }
        Ok(())
    }

    /// Whether `path` is a directory (following symlinks); `false` if missing.
    fn is_dir(&self, path: &Path) -> Result<bool, SftpError> {
        match self.raw().stat(path) {
            Ok(stat) if stat.is_dir() => Ok(true),
            Ok(_) => Err(SftpError::Remote {
                target: self.target().clone(),
                op: "creating directory",
                path: path.to_path_buf(),
                reason: "a file of that name exists".into(),
            }),
            Err(e) => match SftpError::from_op(self.target(), "checking directory", path, e) {
                missing if missing.kind() == crate::ErrorKind::NotFound => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Every file under directory `prefix`, as (name relative to `prefix`
    /// with `/` between directories, size), sorted by name. Temporaries
    /// ([`TEMP_PREFIX`]) are left out, symlinks are not followed, and a
    /// missing `prefix` is empty: a target nobody has written to yet. Names
    /// that are not UTF-8 are shown lossily (this crate never writes any).
    pub fn list_recursive(&self, prefix: impl AsRef<Path>) -> Result<Vec<(String, u64)>, SftpError> {
        let mut out = Vec::new();
        let mut stack = vec![(prefix.as_ref().to_path_buf(), String::new())];
        while let Some((dir, relative)) = stack.pop() {
            let entries = match self.read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == crate::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for (name, meta) in entries {
                let name_text = String::from_utf8_lossy(&name);
                if name_text.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let rel = if relative.is_empty() { name_text.into_owned() } else { format!("{relative}/{name_text}") };
                match meta.kind {
                    crate::FileKind::Dir => stack
                        .push((dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name)), rel)),
                    crate::FileKind::File => out.push((rel, meta.size)),
                    _ => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Rename `from` over `to`, atomically where the server has
    /// `posix-rename@openssh.com` (OpenSSH does). Else SFTP v3 rename, which
    /// OpenSSH does as link+unlink: atomic for a new name, refused for an
    /// existing one, which is then removed first: for a moment the name is
    /// missing, but it never shows partial content.
    fn rename_over(&self, from: &Path, to: &Path) -> Result<(), SftpError> {
        if let Some(Ok(())) = self.posix_rename(from, to) {
            return Ok(());
        }
        let rename = || self.raw().rename(from, to, None);
        match rename() {
            Ok(()) => Ok(()),
            Err(first) => {
                if self.raw().lstat(to).is_err() {
                    return Err(SftpError::from_op(self.target(), "renaming", from, first));
                }
                self.remove(to)?;
                rename().map_err(|e| SftpError::from_op(self.target(), "renaming", from, e))
            }
        }
    }

    /// `None` when the server lacks the extension or its channel broke (the
    /// next call opens a new one); a failed status is left to the v3 path,
    /// which reports it or, where only the extension is refused, succeeds.
    fn posix_rename(&self, from: &Path, to: &Path) -> Option<Result<(), (i32, String)>> {
        let mut slot = self.inner.posix_rename.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let renamer = slot.get_or_insert_with(|| PosixRename::open(&self.inner.session).ok().flatten()).as_mut()?;
        match renamer.rename(from, to) {
            Ok(status) => Some(status),
            Err(_) => {
                *slot = None;
                None
            }
        }
    }
}

/// An object being written; see [`Sftp::create_temp_and_rename`].
pub struct AtomicWriter {
    file: Option<BufWriter<ssh2::File>>,
    sftp: Sftp,
    temp: PathBuf,
    dest: PathBuf,
}

impl AtomicWriter {
    /// Flush, sync (where the server has `fsync@openssh.com`), close, and
    /// rename to the final name. On error the temporary is removed.
    pub fn commit(mut self) -> Result<(), SftpError> {
        let target = self.sftp.target().clone();
        let fail = |e: ssh2::Error| SftpError::from_op(&target, "writing", &self.temp, e);
        let buffered = self.file.take().expect("the file is open until commit or drop");
        let mut file = buffered.into_inner().map_err(|e| SftpError::Remote {
            target: target.clone(),
            op: "writing",
            path: self.temp.clone(),
            reason: e.error().to_string(),
        })?;
        match file.fsync() {
            Err(e) if e.code() != ssh2::ErrorCode::SFTP(FX_OP_UNSUPPORTED) => return Err(fail(e)),
            _ => {}
        }
        file.close().map_err(fail)?;
        drop(file);
        self.sftp.rename_over(&self.temp, &self.dest)?;
        self.temp = PathBuf::new();
        Ok(())
    }

    /// The final name.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    fn fail(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: writing {}: {e}", self.sftp.target(), self.temp.display()))
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().expect("the file is open until commit or drop");
        file.write(buf).map_err(|e| self.fail(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let file = self.file.as_mut().expect("the file is open until commit or drop");
        file.flush().map_err(|e| self.fail(e))
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        // Close the handle before removing what it names.
        drop(self.file.take());
        if !self.temp.as_os_str().is_empty() {
            let _ = self.sftp.raw().unlink(&self.temp);
        }
    }
}

impl std::fmt::Debug for AtomicWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicWriter").field("temp", &self.temp).field("dest", &self.dest).finish_non_exhaustive()
    }
}
