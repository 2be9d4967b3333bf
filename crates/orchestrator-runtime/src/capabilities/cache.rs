//! The sink's local cache (WIT `cache`): the same object store as `storage`,
//! over a directory under the pipeline's cache directory, one per sink, target
//! and source.

use super::storage::{get, object_infos, put};
use crate::bindings::PluginError;
use crate::bindings::sink::orchestrator::plugin::cache as wit;
use crate::bindings::sink::orchestrator::plugin::storage::{Encoding, ObjectInfo};
use crate::state::PluginState;
use orchestrator_storage::{ObjectReader, ObjectWriter, Place};
use wasmtime::component::Resource;

impl PluginState {
    fn cache(&self) -> Result<&Place, PluginError> {
        self.cache.as_ref().ok_or_else(|| PluginError::Unsupported("this sink has no cache directory".into()))
    }
}

impl wit::Host for PluginState {
    async fn list_objects(&mut self) -> wasmtime::Result<Result<Vec<ObjectInfo>, PluginError>> {
        Ok(self.cache().and_then(|c| c.list().map(object_infos).map_err(PluginError::from)))
    }

    async fn put(
        &mut self,
        name: String,
        encoding: Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        let place = self.cache().cloned();
        put(self, place.as_ref().map_err(Clone::clone), &name, encoding)
    }

    async fn get(
        &mut self,
        name: String,
        encoding: Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        let place = self.cache().cloned();
        get(self, place.as_ref().map_err(Clone::clone), &name, encoding)
    }

    async fn delete(&mut self, name: String) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.cache().and_then(|c| c.delete(&name).map_err(PluginError::from)))
    }
}
