//! `prune --dry-run`: the sink's own retention runs against a storage that
//! reads as usual, remembers what would be deleted instead of deleting it,
//! and refuses to write; so what is listed is exactly what a real prune of
//! the same sink would remove, by the same code.

use crate::{ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// A storage whose deletes are only recorded.
#[derive(Debug)]
pub struct DryRun {
    inner: Arc<dyn Storage>,
    deleted: Mutex<Vec<String>>,
}

impl DryRun {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> DryRun {
        DryRun { inner, deleted: Mutex::new(Vec::new()) }
    }

    /// The names that would have been deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn gone(&self, name: &str) -> bool {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|d| d == name)
    }
}

fn refused(name: &str) -> StorageError {
    StorageError::Io(format!("{name}: a dry run writes nothing"))
}

impl Storage for DryRun {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut listed = self.inner.list(prefix)?;
        listed.retain(|o| !self.gone(&format!("{prefix}{}", o.name)));
        Ok(listed)
    }

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        Err(refused(name))
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError> {
        self.inner.get(name)
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).push(name.to_string());
        Ok(())
    }

    fn create_new(&self, name: &str, _data: &[u8]) -> Result<bool, StorageError> {
        Err(refused(name))
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        self.inner.read_small(name)
    }

    fn remove_debris(&self, _prefix: &str) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn locate(&self, name: &str) -> String {
        self.inner.locate(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_are_recorded_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = crate::open(&format!("file://{}", dir.path().display())).unwrap();
        assert!(file.create_new("s/a", b"x").unwrap());
        assert!(file.create_new("s/b", b"y").unwrap());
        let dry = DryRun::new(file.clone());
        dry.delete("s/a").unwrap();
        assert_eq!(dry.deleted(), ["s/a"]);
        let names: Vec<String> = dry.list("s/").unwrap().into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["b"]);
        assert!(dir.path().join("s/a").exists());
        assert!(dry.put("s/c").is_err() && dry.create_new("s/c", b"z").is_err());
        assert!(!dir.path().join("s/c").exists());
    }
}
