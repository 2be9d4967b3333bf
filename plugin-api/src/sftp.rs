//! Reading a tree over SFTP (the `sftp` host interface, WIT 0.1.4). The host
//! connects, checks the server's key against `known_hosts` and logs in with
//! a key file; an encrypted key's passphrase is named by config key.

use crate::bindings::source::orchestrator::plugin::sftp as host;
use crate::{Metadata, PluginError};

pub use host::ConnectOptions;

/// One SSH connection with its SFTP channel.
pub struct Session {
    inner: host::Session,
}

impl Session {
    /// Connect to `options.host:options.port`, which the plugin must have
    /// wanted (`Want::Connect("host:port")`) and been granted.
    pub fn connect(options: &ConnectOptions) -> Result<Session, PluginError> {
        Ok(Session { inner: host::connect(options)? })
    }

    /// Metadata of `path` without following a final symlink.
    pub fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        self.inner.lstat(path)
    }

    /// The children of a directory, sorted bytewise by name.
    pub fn read_dir(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, Metadata)>, PluginError> {
        Ok(self.inner.read_dir(path)?.into_iter().map(|e| (e.name, e.meta)).collect())
    }

    /// A symlink's target.
    pub fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.inner.read_link(path)
    }

    /// Open a regular file; implements [`std::io::Read`].
    pub fn open(&self, path: &[u8]) -> Result<RemoteFile, PluginError> {
        Ok(RemoteFile { inner: self.inner.open(path)? })
    }
}

/// A remote file being read.
pub struct RemoteFile {
    inner: host::RemoteFile,
}

impl std::io::Read for RemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(crate::MAX_CHUNK) as u32;
        let data = self.inner.read(max).map_err(PluginError::into_io)?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

/// The host's chunks as they arrive: what a source hands on unchanged.
impl crate::ReadChunk for RemoteFile {
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        self.inner.read(max.min(crate::MAX_CHUNK) as u32)
    }
}
