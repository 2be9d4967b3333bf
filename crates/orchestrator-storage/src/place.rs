//! One source's place in a target: the objects a sink plugin sees.

use crate::{
    Encoding, KeyRing, ObjectInfo, ObjectReader, ObjectWriter, Storage, StorageError, check_name, is_reserved,
};
use std::sync::Arc;

/// Storage granted to one plugin instance: a target's storage and the place
/// of the source it works on, with the keys its objects are sealed with.
#[derive(Debug, Clone)]
pub struct Place {
    storage: Arc<dyn Storage>,
    prefix: String,
    keys: Arc<KeyRing>,
}

impl Place {
    /// Objects of source `prefix` in `storage`.
    pub fn new(storage: Arc<dyn Storage>, prefix: &str) -> Place {
        Place { storage, prefix: prefix.to_string(), keys: Arc::default() }
    }

    /// The same place, sealing and opening OpenPGP objects with `keys`.
    pub fn with_keys(mut self, keys: Arc<KeyRing>) -> Place {
        self.keys = keys;
        self
    }

    fn full_name(&self, name: &str) -> Result<String, StorageError> {
        check_name(name)?;
        Ok(format!("{}/{name}", self.prefix))
    }

    /// Every object under the source's place, without the host's own.
    pub fn list(&self) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut objects = self.storage.list(&self.prefix)?;
        objects.retain(|o| !is_reserved(&o.name));
        Ok(objects)
    }

    /// Start writing an object, encoded on its way to the storage.
    pub fn put(&self, name: &str, encoding: &Encoding) -> Result<ObjectWriter, StorageError> {
        let full = self.full_name(name)?;
        let sink = self.storage.put(&full)?;
        ObjectWriter::start(name, sink, encoding, &self.keys)
    }

    /// Read an object, decoded on its way out.
    pub fn get(&self, name: &str, encoding: &Encoding) -> Result<ObjectReader, StorageError> {
        let full = self.full_name(name)?;
        let raw = self.storage.get(&full)?;
        ObjectReader::start(raw, encoding, &self.keys)
    }

    /// Remove an object; a missing one is fine.
    pub fn delete(&self, name: &str) -> Result<(), StorageError> {
        let full = self.full_name(name)?;
        self.storage.delete(&full)
    }
}
