//! Temporary files on the host's disk (the `scratch` host interface, WIT
//! 0.1.2), for data too large to keep in a plugin's memory. They vanish when
//! dropped.

use crate::PluginError;
use crate::bindings::sink::orchestrator::plugin::scratch as host;

/// Bytes collected before one `append` crosses to the host.
const WRITE_BUFFER: usize = 1 << 20;

/// A temporary file: written by appending ([`std::io::Write`]), read at any
/// offset.
pub struct ScratchFile {
    inner: host::ScratchFile,
    buf: Vec<u8>,
}

impl ScratchFile {
    /// A new, empty scratch file.
    pub fn create() -> Result<ScratchFile, PluginError> {
        Ok(ScratchFile { inner: host::create()?, buf: Vec::new() })
    }

    /// The length written so far.
    pub fn size(&self) -> u64 {
        self.inner.size() + self.buf.len() as u64
    }

    /// Fill `out` with the bytes at `offset`; returns how many there were
    /// (fewer than `out.len()` only at the end of the file).
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize, PluginError> {
        self.flush_buffer()?;
        let mut filled = 0;
        while filled < out.len() {
            let want = (out.len() - filled).min(crate::MAX_CHUNK) as u32;
            let data = self.inner.read_at(offset + filled as u64, want)?;
            if data.is_empty() {
                break;
            }
            out[filled..filled + data.len()].copy_from_slice(&data);
            filled += data.len();
        }
        Ok(filled)
    }

    fn flush_buffer(&mut self) -> Result<(), PluginError> {
        if !self.buf.is_empty() {
            self.inner.append(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl std::io::Write for ScratchFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.flush_buffer().map_err(PluginError::into_io)?;
        }
        if data.len() >= WRITE_BUFFER {
            self.inner.append(data).map_err(PluginError::into_io)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buffer().map_err(PluginError::into_io)
    }
}
