//! Read-only access to the file trees a source was granted, with full POSIX
//! metadata and byte-exact names (the `filesystem` host interface).

use crate::bindings::source::orchestrator::plugin::filesystem as host;
use crate::{Metadata, PluginError};

/// One child of a directory: its name, and its metadata or why it could not be read.
pub type DirEntry = (Vec<u8>, Result<Metadata, PluginError>);

/// How many children one host call returns.
const LIST_BATCH: u32 = 1024;

/// The metadata of `path` without following a final symlink.
pub fn lstat(path: &[u8]) -> Result<Metadata, PluginError> {
    host::lstat(path)
}

/// The children of the directory at `path`, sorted bytewise by name.
pub fn list_dir(path: &[u8]) -> Result<Listing, PluginError> {
    Ok(Listing { inner: host::list_dir(path)?, batch: Vec::new().into_iter(), done: false })
}

/// Open the regular file at `path`.
pub fn open(path: &[u8]) -> Result<File, PluginError> {
    Ok(File { inner: host::open(path)? })
}

/// Iterator over a directory's children, fetched from the host in batches.
pub struct Listing {
    inner: host::Listing,
    batch: std::vec::IntoIter<host::DirEntry>,
    done: bool,
}

impl Iterator for Listing {
    type Item = Result<DirEntry, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.batch.next() {
                return Some(Ok((e.name, e.meta)));
            }
            if self.done {
                return None;
            }
            match self.inner.next(LIST_BATCH) {
                Ok(batch) if batch.is_empty() => self.done = true,
                Ok(batch) => self.batch = batch.into_iter(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// An open regular file; implements [`std::io::Read`].
pub struct File {
    inner: host::File,
}

impl std::io::Read for File {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(crate::MAX_CHUNK) as u32;
        let data = self.inner.read(max).map_err(PluginError::into_io)?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

/// The host's chunks as they arrive: what a source hands on unchanged.
impl crate::ReadChunk for File {
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        self.inner.read(max.min(crate::MAX_CHUNK) as u32)
    }
}
