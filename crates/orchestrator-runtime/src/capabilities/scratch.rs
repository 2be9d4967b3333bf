//! Temporary files for plugins (WIT `scratch`): anonymous files in the host's
//! temporary directory, so they have no name on disk and vanish with the
//! handle, even when the host is killed.

use crate::bindings::PluginError;
use crate::bindings::sink::orchestrator::plugin::scratch as wit;
use crate::state::PluginState;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use wasmtime::component::Resource;

/// One scratch file.
pub struct ScratchFile {
    file: File,
    size: u64,
}

impl ScratchFile {
    /// A new, empty scratch file.
    pub fn create() -> Result<ScratchFile, PluginError> {
        let file = tempfile::tempfile().map_err(|e| {
            PluginError::Io(format!("cannot create a temporary file in {}: {e}", std::env::temp_dir().display()))
        })?;
        Ok(ScratchFile { file, size: 0 })
    }

    fn append(&mut self, data: &[u8]) -> Result<(), PluginError> {
        self.file.write_all(data).map_err(|e| {
            PluginError::Io(format!("writing a temporary file in {}: {e}", std::env::temp_dir().display()))
        })?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn read_at(&self, offset: u64, max: u32) -> Result<Vec<u8>, PluginError> {
        let len = (max.min(orchestrator_storage::MAX_READ) as u64).min(self.size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| PluginError::Io(format!("reading a temporary file: {e}")))?;
        Ok(buf)
    }
}

impl wit::Host for PluginState {
    async fn create(&mut self) -> wasmtime::Result<Result<Resource<ScratchFile>, PluginError>> {
        match ScratchFile::create() {
            Ok(f) => Ok(Ok(self.table.push(f)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit::HostScratchFile for PluginState {
    async fn append(
        &mut self,
        this: Resource<ScratchFile>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.table.get_mut(&this)?.append(&data))
    }

    async fn read_at(
        &mut self,
        this: Resource<ScratchFile>,
        offset: u64,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        Ok(self.table.get(&this)?.read_at(offset, max))
    }

    async fn size(&mut self, this: Resource<ScratchFile>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.size)
    }

    async fn drop(&mut self, this: Resource<ScratchFile>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_at_offsets() {
        let mut f = ScratchFile::create().unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        assert_eq!(f.size, 11);
        assert_eq!(f.read_at(6, 100).unwrap(), b"world");
        assert_eq!(f.read_at(0, 5).unwrap(), b"hello");
        assert!(f.read_at(11, 10).unwrap().is_empty());
        assert!(f.read_at(50, 10).unwrap().is_empty());
    }
}
