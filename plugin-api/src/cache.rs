//! The sink's local cache (the `cache` host interface, WIT 0.1.2): objects on
//! this machine's disk, scoped like [`crate::storage`] to one sink, target and
//! source. Disposable: a sink must work when it is empty, and trust the
//! target when the two disagree.

use crate::PluginError;
use crate::bindings::sink::orchestrator::plugin::cache as host;
use crate::storage::{Encoding, ObjectInfo, ObjectReader, ObjectWriter};

/// Every cached object.
pub fn list() -> Result<Vec<ObjectInfo>, PluginError> {
    host::list_objects()
}

/// Start writing the cached object `name`, encoded by the host.
pub fn put(name: &str, encoding: &Encoding) -> Result<ObjectWriter, PluginError> {
    Ok(ObjectWriter::new(host::put(name, encoding)?))
}

/// Read the cached object `name`; `not-found` when it is not cached.
pub fn get(name: &str, encoding: &Encoding) -> Result<ObjectReader, PluginError> {
    Ok(ObjectReader::new(host::get(name, encoding)?))
}

/// Remove the cached object `name` (missing is fine).
pub fn delete(name: &str) -> Result<(), PluginError> {
    host::delete(name)
}
