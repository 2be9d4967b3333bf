//! The sink's local cache (WIT `cache`): the same object store as `storage`,
//! over a directory under the pipeline's cache directory, one per sink, target
//! and source.

use crate::capabilities::storage::{ObjectReader, ObjectWriter, StorageCtx};
use crate::runtime::bindings::PluginError;
use crate::runtime::bindings::sink::orchestrator::plugin::cache as wit;
use crate::runtime::bindings::sink::orchestrator::plugin::storage::{Encoding, ObjectInfo};
use crate::runtime::state::PluginState;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::component::Resource;

/// Where a sink's cache lives: `<cache_dir>/<sink>-<hash of target>`. The
/// target is part of the name so that pointing a sink at another target never
/// mixes their metadata.
pub fn sink_cache_dir(cache_dir: &Path, sink: &str, target: &str) -> PathBuf {
    let hash = hex::encode(&Sha256::digest(target.as_bytes())[..6]);
    cache_dir.join(format!("{sink}-{hash}"))
}

impl PluginState {
    fn cache(&self) -> Result<&StorageCtx, PluginError> {
        self.cache.as_ref().ok_or_else(|| PluginError::Unsupported("this sink has no cache directory".into()))
    }
}

impl wit::Host for PluginState {
    async fn list_objects(&mut self) -> wasmtime::Result<Result<Vec<ObjectInfo>, PluginError>> {
        Ok(self.cache().and_then(|c| c.list()))
    }

    async fn put(
        &mut self,
        name: String,
        encoding: Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        match self.cache().and_then(|c| c.put(&name, &encoding)) {
            Ok(w) => Ok(Ok(self.table.push(w)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn get(
        &mut self,
        name: String,
        encoding: Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        match self.cache().and_then(|c| c.get(&name, &encoding)) {
            Ok(r) => Ok(Ok(self.table.push(r)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete(&mut self, name: String) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.cache().and_then(|c| c.delete(&name)))
    }
}
