//! The `storage` interface: a sink's objects in its target, over the
//! [`Place`] the host granted it (see `orchestrator-storage` for the names,
//! encodings and kinds of storage). Only conversions and glue live here.

use crate::bindings::PluginError;
use crate::bindings::sink::orchestrator::plugin::storage as wit;
use crate::state::PluginState;
use orchestrator_storage::{Encoding, ObjectInfo, ObjectReader, ObjectWriter, OpenpgpKeys, Place, StorageError};
use wasmtime::component::Resource;

impl From<StorageError> for PluginError {
    fn from(e: StorageError) -> PluginError {
        match e {
            StorageError::Config(m) => PluginError::Config(m),
            StorageError::PermissionDenied(m) => PluginError::PermissionDenied(m),
            StorageError::NotFound(m) => PluginError::NotFound(m),
            StorageError::Io(m) => PluginError::Io(m),
            StorageError::Unsupported(m) => PluginError::Unsupported(m),
            StorageError::Corrupt(m) => PluginError::Corrupt(m),
            StorageError::Other(m) => PluginError::Other(m),
        }
    }
}

impl From<wit::Encoding> for Encoding {
    fn from(e: wit::Encoding) -> Encoding {
        match e {
            wit::Encoding::None => Encoding::None,
            wit::Encoding::Gzip => Encoding::Gzip,
            wit::Encoding::Openpgp(k) => Encoding::Openpgp(OpenpgpKeys {
                passphrase: k.passphrase,
                recipients: k.recipients,
                secret_key: k.secret_key,
            }),
        }
    }
}

pub(crate) fn object_infos(objects: Vec<ObjectInfo>) -> Vec<wit::ObjectInfo> {
    objects.into_iter().map(|o| wit::ObjectInfo { name: o.name, size: o.size }).collect()
}

/// `put` on a place, the writer pushed into the instance's table.
pub(crate) fn put(
    state: &mut PluginState,
    place: Result<&Place, PluginError>,
    name: &str,
    encoding: wit::Encoding,
) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
    match place.and_then(|p| p.put(name, &encoding.into()).map_err(PluginError::from)) {
        Ok(w) => Ok(Ok(state.table.push(w)?)),
        Err(e) => Ok(Err(e)),
    }
}

/// `get` on a place, the reader pushed into the instance's table.
pub(crate) fn get(
    state: &mut PluginState,
    place: Result<&Place, PluginError>,
    name: &str,
    encoding: wit::Encoding,
) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
    match place.and_then(|p| p.get(name, &encoding.into()).map_err(PluginError::from)) {
        Ok(r) => Ok(Ok(state.table.push(r)?)),
        Err(e) => Ok(Err(e)),
    }
}

impl PluginState {
    fn storage(&self) -> Result<&Place, PluginError> {
        self.storage
            .as_ref()
            .ok_or_else(|| PluginError::PermissionDenied("this sink has no `target` to store into".into()))
    }
}

impl wit::Host for PluginState {
    async fn list_objects(&mut self) -> wasmtime::Result<Result<Vec<wit::ObjectInfo>, PluginError>> {
        Ok(self.storage().and_then(|s| s.list().map(object_infos).map_err(PluginError::from)))
    }

    async fn put(&mut self, name: String) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        self.put_encoded(name, wit::Encoding::None).await
    }

    async fn put_encoded(
        &mut self,
        name: String,
        encoding: wit::Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        let place = self.storage().cloned();
        put(self, place.as_ref().map_err(Clone::clone), &name, encoding)
    }

    async fn get(&mut self, name: String) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        self.get_decoded(name, wit::Encoding::None).await
    }

    async fn get_decoded(
        &mut self,
        name: String,
        encoding: wit::Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        let place = self.storage().cloned();
        get(self, place.as_ref().map_err(Clone::clone), &name, encoding)
    }

    async fn delete(&mut self, name: String) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.storage().and_then(|s| s.delete(&name).map_err(PluginError::from)))
    }
}

impl wit::HostObjectWriter for PluginState {
    async fn write(
        &mut self,
        this: Resource<ObjectWriter>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.table.get_mut(&this)?.write(data).map_err(PluginError::from))
    }

    async fn finish(
        &mut self,
        this: Resource<ObjectWriter>,
    ) -> wasmtime::Result<Result<wit::StoredObject, PluginError>> {
        Ok(self
            .table
            .get_mut(&this)?
            .finish()
            .map(|s| wit::StoredObject { name: s.name, size: s.size, sha1: s.sha1 })
            .map_err(PluginError::from))
    }

    async fn drop(&mut self, this: Resource<ObjectWriter>) -> wasmtime::Result<()> {
        // Dropping an unfinished writer discards the temporary object (the
        // storage's sink cleans up in its own Drop).
        self.table.delete(this)?;
        Ok(())
    }
}

impl wit::HostObjectReader for PluginState {
    async fn read(&mut self, this: Resource<ObjectReader>, max: u32) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        Ok(self.table.get_mut(&this)?.read(max).map_err(PluginError::from))
    }

    async fn drop(&mut self, this: Resource<ObjectReader>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
