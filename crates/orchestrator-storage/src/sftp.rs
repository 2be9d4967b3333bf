//! `sftp://user@host[:port]/path` targets: a directory on an SSH server (a
//! NAS, a Hetzner storage box, a friend's machine) through the host's own
//! SFTP client, `orchestrator-sftp`.
//!
//! The server's key must be in the `known_hosts` file the storage table
//! names (default `~/.ssh/known_hosts`); the login is a key file (with its
//! passphrase as a secret) or a password secret. Objects are written under a
//! temporary name and renamed into place (`posix-rename@openssh.com`), so a
//! reader never sees half an object. The connection is made at the first
//! operation, not when the pipeline is loaded (`validate` touches nothing),
//! and made again after it breaks.

use crate::options::StorageOptions;
use crate::{MAX_SMALL, ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use orchestrator_sftp::{Auth, ErrorKind, Secret, Sftp, SftpConfig, SftpError, TEMP_PREFIX};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The keys a `[sinks.NAME.storage]` table may hold for `sftp://`.
const KEYS: &[&str] = &["key_file", "passphrase", "password", "known_hosts", "timeout_seconds"];

/// A directory on an SFTP server.
pub struct SftpStorage {
    config: SftpConfig,
    /// The target's directory on the server (relative to the login
    /// directory when the URL's path starts with `/~/`).
    root: PathBuf,
    /// The open session, if any; `None` before the first use and after the
    /// connection broke.
    session: Mutex<Option<Sftp>>,
}

impl std::fmt::Debug for SftpStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpStorage")
            .field("target", &self.config.target().to_string())
            .field("root", &self.root)
            .finish()
    }
}

/// `user@host:port` and the path of an `sftp://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    user: String,
    host: String,
    port: u16,
    path: PathBuf,
}

fn parse_url(url: &str) -> Result<Url, StorageError> {
    let bad =
        |why: &str| StorageError::Config(format!("target `{url}`: {why} (expected sftp://user@host[:port]/path)"));
    let rest = url.strip_prefix("sftp://").ok_or_else(|| bad("not an sftp:// URL"))?;
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no path"))?;
    let (user, host_port) = authority.rsplit_once('@').ok_or_else(|| bad("no user"))?;
    if user.is_empty() || user.contains([':', '/']) {
        return Err(bad("a user name without `:` (the password goes in the storage table, as a secret)"));
    }
    let (host, port) = match host_port.strip_prefix('[') {
        // [v6 address]:port
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("an unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("a port that is not 1-65535"))?,
        None => orchestrator_sftp::DEFAULT_PORT,
    };
    let path = match path.strip_prefix("~/") {
        Some(relative) => PathBuf::from(relative),
        None => PathBuf::from(format!("/{path}")),
    };
    if path.as_os_str().is_empty() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(bad("a path without `..`"));
    }
    Ok(Url { user: user.to_string(), host: host.to_string(), port, path })
}

impl SftpStorage {
    /// The storage of `url`, with the login and host-key check of `options`.
    pub fn new(url: &str, options: &StorageOptions) -> Result<SftpStorage, StorageError> {
        let Url { user, host, port, path } = parse_url(url)?;
        options.only(KEYS, "sftp://")?;
        let auth = match (options.path("key_file")?, options.secret("password")?) {
            (Some(_), Some(_)) => {
                return Err(StorageError::Config("storage: give `key_file` or `password`, not both".into()));
            }
            (Some(path), None) => Auth::KeyFile { path, passphrase: options.secret("passphrase")?.map(Secret::new) },
            (None, Some(password)) => Auth::Password(Secret::new(password)),
            (None, None) => {
                return Err(StorageError::Config(
                    "storage: an sftp:// target needs `key_file` (and `passphrase` if the key has one) or `password`"
                        .into(),
                ));
            }
        };
        let known_hosts = match options.path("known_hosts")? {
            Some(p) => p,
            None => options.home().map(|h| h.join(".ssh/known_hosts")).ok_or_else(|| {
                StorageError::Config(
                    "storage.known_hosts: there is no home directory to find ~/.ssh/known_hosts in; name the file"
                        .into(),
                )
            })?,
        };
        let mut config = SftpConfig::new(host, user, auth, known_hosts);
        config.port = port;
        if let Some(seconds) = options.integer("timeout_seconds")? {
            config.timeout = std::time::Duration::from_secs(seconds);
        }
        Ok(SftpStorage { config, root: path, session: Mutex::new(None) })
    }

    /// The session, connecting first if there is none.
    fn sftp(&self) -> Result<Sftp, StorageError> {
        let mut slot = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = Sftp::connect(&self.config).map_err(|e| self.error(e))?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Map an error, and forget a session that broke so the next operation
    /// connects again.
    fn error(&self, e: SftpError) -> StorageError {
        if e.kind() == ErrorKind::Unreachable {
            *self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        storage_error(e)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Make the directory object `name` goes in.
    fn parent_of(&self, sftp: &Sftp, name: &str) -> Result<PathBuf, StorageError> {
        let path = self.path_of(name);
        if let Some(dir) = path.parent() {
            sftp.mkdir_all(dir).map_err(|e| self.error(e))?;
        }
        Ok(path)
    }
}

/// An object being written: a temporary on the server, renamed on commit.
struct SftpSink {
    writer: orchestrator_sftp::AtomicWriter,
}

impl ObjectSink for SftpSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.writer
            .write_all(data)
            .map_err(|e| StorageError::Io(format!("writing {}: {e}", self.writer.path().display())))
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.writer.commit().map_err(storage_error)
    }
}

/// The storage case of an SFTP failure; the message names the server.
fn storage_error(e: SftpError) -> StorageError {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound(message),
        ErrorKind::PermissionDenied | ErrorKind::Auth | ErrorKind::HostKey => StorageError::PermissionDenied(message),
        _ => StorageError::Io(message),
    }
}

impl Storage for SftpStorage {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let sftp = self.sftp()?;
        let objects = sftp.list_recursive(self.path_of(prefix)).map_err(|e| self.error(e))?;
        Ok(objects
            .into_iter()
            .filter(|(name, _)| !name.split('/').any(|c| c.starts_with(crate::RESERVED_PREFIX)))
            .map(|(name, size)| ObjectInfo { name, size })
            .collect())
    }

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        let sftp = self.sftp()?;
        let path = self.parent_of(&sftp, name)?;
        let writer = sftp.create_temp_and_rename(&path).map_err(|e| self.error(e))?;
        Ok(Box::new(SftpSink { writer }))
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError> {
        let sftp = self.sftp()?;
        Ok(Box::new(sftp.open(self.path_of(name)).map_err(|e| self.error(e))?))
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        let sftp = self.sftp()?;
        match sftp.remove(self.path_of(name)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        let sftp = self.sftp()?;
        let path = self.parent_of(&sftp, name)?;
        sftp.create_exclusive(&path, data).map_err(|e| self.error(e))
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        let sftp = self.sftp()?;
        let path = self.path_of(name);
        let meta = match sftp.lstat(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        // As for file:// (see there): never a link, a fifo or a huge file.
        if meta.kind != orchestrator_sftp::FileKind::File {
            return Err(StorageError::Io(format!("{} is not a regular file; remove it", self.locate(name))));
        }
        if meta.size > MAX_SMALL {
            return Err(crate::too_large(self.locate(name), meta.size));
        }
        let mut data = Vec::new();
        let mut reader = sftp.open(&path).map_err(|e| self.error(e))?;
        (&mut reader)
            .take(MAX_SMALL)
            .read_to_end(&mut data)
            .map_err(|e| StorageError::Io(format!("reading {}: {e}", self.locate(name))))?;
        Ok(Some((data, Some(meta.mtime))))
    }

    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError> {
        let sftp = self.sftp()?;
        let mut removed = 0;
        let mut stack = vec![self.path_of(prefix)];
        while let Some(dir) = stack.pop() {
            let entries = match sftp.read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.error(e)),
            };
            for (name, meta) in entries {
                let path = dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name));
                match meta.kind {
                    orchestrator_sftp::FileKind::Dir => stack.push(path),
                    orchestrator_sftp::FileKind::File if name.starts_with(TEMP_PREFIX.as_bytes()) => {
                        match sftp.remove(&path) {
                            Err(e) if e.kind() != ErrorKind::NotFound => return Err(self.error(e)),
                            _ => removed += 1,
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(removed)
    }

    fn locate(&self, name: &str) -> String {
        let t = self.config.target();
        format!("sftp://{}@{}:{}{}", t.user, t.host, t.port, display_path(&self.path_of(name)))
    }
}

fn display_path(p: &Path) -> String {
    let shown = p.display().to_string();
    if shown.starts_with('/') { shown } else { format!("/~/{shown}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_user_host_port_and_path() {
        let u = parse_url("sftp://backup@nas.lan/tank/backups").unwrap();
        assert_eq!(u, Url { user: "backup".into(), host: "nas.lan".into(), port: 22, path: "/tank/backups".into() });
        let u = parse_url("sftp://u123@u123.your-storagebox.de:23/~/offsite").unwrap();
        assert_eq!((u.port, u.path), (23, PathBuf::from("offsite")));
        let u = parse_url("sftp://me@[::1]:2222/srv").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 2222));
        for bad in [
            "sftp://nas.lan/x",
            "sftp://u:pw@nas.lan/x",
            "sftp://u@nas.lan",
            "sftp://u@nas.lan:0/x",
            "sftp://u@nas.lan:99999/x",
            "sftp://u@/x",
            "sftp://u@h/a/../b",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("expected sftp://user@host[:port]/path"), "{bad}: {e}");
        }
    }
}
