//! The read side, what sources need: metadata (duplicity decides from type,
//! mode, uid, gid and mtime whether a file changed, so content is read only
//! for changed files), directory listings, link targets, streamed content.

use crate::Sftp;
use crate::config::Target;
use crate::error::SftpError;
use ssh2::FileStat;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What one libssh2 read asks for. libssh2 keeps four times the request in
/// flight (up to 8 MiB), so a large request is what makes a read fast over a
/// link with latency; small reads by the caller are served from this buffer.
const READ_CHUNK: usize = 1 << 20;

/// libssh2's "no more entries" from `readdir`.
const LIBSSH2_ERROR_FILE: i32 = -16;

/// The type of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A device, socket, or a type the server did not say.
    Other,
}

/// Metadata as `lstat` gives it. SFTP version 3 carries seconds only, so
/// `mtime` has no fraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Entry type.
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Numeric owner on the server.
    pub uid: u32,
    /// Numeric group on the server.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Size in bytes (a symlink's is its target's length).
    pub size: u64,
}

impl Meta {
    fn from_stat(stat: &FileStat) -> Meta {
        let perm = stat.perm.unwrap_or(0);
        let kind = match perm & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            _ => FileKind::Other,
        };
        Meta {
            kind,
            mode: perm & 0o7777,
            uid: stat.uid.unwrap_or(0),
            gid: stat.gid.unwrap_or(0),
            mtime: stat.mtime.map_or(0, |t| t as i64),
            size: stat.size.unwrap_or(0),
        }
    }
}

impl Sftp {
    /// Metadata of `path` itself, not of what a symlink points to.
    pub fn lstat(&self, path: impl AsRef<Path>) -> Result<Meta, SftpError> {
        let path = path.as_ref();
        let stat = self.raw().lstat(path).map_err(|e| SftpError::from_op(self.target(), "lstat", path, e))?;
        Ok(Meta::from_stat(&stat))
    }

    /// The entries of directory `path` without `.` and `..`, sorted bytewise
    /// by name as duplicity orders them. Names are bytes: a Unix file name
    /// need not be UTF-8.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<(Vec<u8>, Meta)>, SftpError> {
        let path = path.as_ref();
        let fail = |e| SftpError::from_op(self.target(), "listing", path, e);
        let mut dir = self.raw().opendir(path).map_err(fail)?;
        let mut entries = Vec::new();
        loop {
            let (name, stat) = match dir.readdir() {
                Ok(entry) => entry,
                Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_FILE) => break,
                Err(e) => return Err(fail(e)),
            };
            let name = name.as_os_str().as_bytes().to_vec();
            if name == b"." || name == b".." {
                continue;
            }
            // OpenSSH sends lstat attributes with each name; a server that
            // sends none gets asked.
            let meta = match stat.perm {
                Some(_) => Meta::from_stat(&stat),
                None => self.lstat(path.join(std::ffi::OsStr::from_bytes(&name)))?,
            };
            entries.push((name, meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// The target of symlink `path`, as stored (not resolved).
    pub fn read_link(&self, path: impl AsRef<Path>) -> Result<PathBuf, SftpError> {
        let path = path.as_ref();
        self.raw().readlink(path).map_err(|e| SftpError::from_op(self.target(), "reading link", path, e))
    }

    /// Stream the content of file `path`. Nothing is held beyond one buffer
    /// and libssh2's read-ahead, whatever the file's size.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<SftpReader, SftpError> {
        let path = path.as_ref();
        let file = self.raw().open(path).map_err(|e| SftpError::from_op(self.target(), "opening", path, e))?;
        Ok(SftpReader {
            file,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            pos: 0,
            len: 0,
            target: self.target().clone(),
            path: path.to_path_buf(),
        })
    }
}

/// A remote file being read front to back.
pub struct SftpReader {
    file: ssh2::File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    target: Target,
    path: PathBuf,
}

impl SftpReader {
    fn fail(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: reading {}: {e}", self.target, self.path.display()))
    }
}

impl Read for SftpReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            if out.len() >= self.buf.len() {
                return self.file.read(out).map_err(|e| self.fail(e));
            }
            self.len = self.file.read(&mut self.buf).map_err(|e| self.fail(e))?;
            self.pos = 0;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl std::fmt::Debug for SftpReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpReader").field("target", &self.target.to_string()).field("path", &self.path).finish()
    }
}
