//! Named objects in the sink's target (the `storage` host interface). The host
//! scopes every name to the place of the source being worked on.

use crate::PluginError;
use crate::bindings::sink::orchestrator::plugin::storage as host;

pub use host::{Encoding, ObjectInfo, OpenpgpKeys, StoredObject};

/// Bytes collected before one `write` crosses to the host.
const WRITE_BUFFER: usize = 1 << 20;

/// Every object under this source's place.
pub fn list() -> Result<Vec<ObjectInfo>, PluginError> {
    host::list_objects()
}

/// Start writing the object `name`; nothing is visible until
/// [`ObjectWriter::finish`].
pub fn put(name: &str) -> Result<ObjectWriter, PluginError> {
    Ok(ObjectWriter { inner: host::put(name)?, buf: Vec::with_capacity(WRITE_BUFFER) })
}

/// Read the object `name`.
pub fn get(name: &str) -> Result<ObjectReader, PluginError> {
    Ok(ObjectReader { inner: host::get(name)? })
}

/// Start writing the object `name`, which the host encodes (gzip, OpenPGP)
/// on its way to storage.
pub fn put_encoded(name: &str, encoding: &Encoding) -> Result<ObjectWriter, PluginError> {
    Ok(ObjectWriter { inner: host::put_encoded(name, encoding)?, buf: Vec::with_capacity(WRITE_BUFFER) })
}

/// Read the object `name`, which the host decodes on its way out.
pub fn get_decoded(name: &str, encoding: &Encoding) -> Result<ObjectReader, PluginError> {
    Ok(ObjectReader { inner: host::get_decoded(name, encoding)? })
}

/// Remove the object `name` (missing is fine).
pub fn delete(name: &str) -> Result<(), PluginError> {
    host::delete(name)
}

/// An object being written; implements [`std::io::Write`].
pub struct ObjectWriter {
    inner: host::ObjectWriter,
    buf: Vec<u8>,
}

impl ObjectWriter {
    pub(crate) fn new(inner: host::ObjectWriter) -> ObjectWriter {
        ObjectWriter { inner, buf: Vec::with_capacity(WRITE_BUFFER) }
    }

    /// Make the object visible under its name.
    pub fn finish(mut self) -> Result<StoredObject, PluginError> {
        self.flush_buffer()?;
        self.inner.finish()
    }

    fn flush_buffer(&mut self) -> Result<(), PluginError> {
        if !self.buf.is_empty() {
            self.inner.write(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl std::io::Write for ObjectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.flush_buffer().map_err(PluginError::into_io)?;
        }
        if data.len() >= WRITE_BUFFER {
            self.inner.write(data).map_err(PluginError::into_io)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buffer().map_err(PluginError::into_io)
    }
}

/// An object being read; implements [`std::io::Read`].
pub struct ObjectReader {
    inner: host::ObjectReader,
}

impl ObjectReader {
    pub(crate) fn new(inner: host::ObjectReader) -> ObjectReader {
        ObjectReader { inner }
    }
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(crate::MAX_CHUNK) as u32;
        let data = self.inner.read(max).map_err(PluginError::into_io)?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}
