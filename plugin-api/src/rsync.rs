//! rsync signatures computed by the host (the `rsync` host interface, WIT
//! 0.1.3): librsync's MD4 signature of a stream, hashed natively and, for
//! large files, in parallel with the plugin.

use crate::PluginError;
use crate::bindings::sink::orchestrator::plugin::rsync as host;

/// Bytes collected before one `update` crosses to the host.
const BUFFER: usize = 256 << 10;

/// A signature being computed over a file's content.
pub struct Signer {
    inner: host::Signer,
    buf: Vec<u8>,
}

impl Signer {
    /// A signer with `block_len`-byte blocks and `strong_len`-byte MD4 sums
    /// (duplicity uses 8).
    pub fn new(block_len: u32, strong_len: u32) -> Result<Signer, PluginError> {
        Ok(Signer { inner: host::create_signer(block_len, strong_len)?, buf: Vec::new() })
    }

    /// Feed the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) -> Result<(), PluginError> {
        if self.buf.is_empty() && data.len() >= BUFFER {
            return self.inner.update(data);
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BUFFER {
            self.inner.update(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// The signature in librsync's format.
    pub fn finish(self) -> Result<Vec<u8>, PluginError> {
        if !self.buf.is_empty() {
            self.inner.update(&self.buf)?;
        }
        self.inner.finish()
    }
}
