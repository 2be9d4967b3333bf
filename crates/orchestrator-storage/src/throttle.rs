//! A sink's `limits.upload_rate`: every kind of storage's uploads held to a
//! rate, all objects of the sink together, by one wrapper around the
//! storage (so a new kind gets it for nothing).
//!
//! Writes reach storage on the encoder's store thread, never on an async
//! executor's, so waiting here holds up only that object's pipeline, whose
//! bounded queues then hold up the plugin.

use crate::{ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How far ahead of the rate a burst may run (after an idle moment).
const BURST: Duration = Duration::from_millis(250);

/// When the bytes sent so far may have been sent, at the rate.
#[derive(Debug)]
struct Pace {
    rate: u64,
    due: Mutex<Instant>,
}

impl Pace {
    /// Account for `n` bytes, waiting until they are within the rate.
    fn take(&self, n: usize) {
        let now = Instant::now();
        let wait = {
            let mut due = self.due.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Idle time earns at most a short burst.
            if *due + BURST < now {
                *due = now - BURST;
            }
            *due += Duration::from_secs_f64(n as f64 / self.rate as f64);
            due.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A storage whose uploads share one rate.
#[derive(Debug)]
pub(crate) struct Throttled {
    inner: Arc<dyn Storage>,
    pace: Arc<Pace>,
}

impl Throttled {
    pub(crate) fn new(inner: Arc<dyn Storage>, bytes_per_second: u64) -> Throttled {
        Throttled { inner, pace: Arc::new(Pace { rate: bytes_per_second.max(1), due: Mutex::new(Instant::now()) }) }
    }
}

struct ThrottledSink {
    inner: Box<dyn ObjectSink>,
    pace: Arc<Pace>,
}

impl ObjectSink for ThrottledSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        // In slices, so one large write does not send a burst then sleep long.
        for slice in data.chunks(64 << 10) {
            self.pace.take(slice.len());
            self.inner.write(slice)?;
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.inner.commit()
    }
}

impl Storage for Throttled {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.inner.list(prefix)
    }

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        Ok(Box::new(ThrottledSink { inner: self.inner.put(name)?, pace: self.pace.clone() }))
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError> {
        self.inner.get(name)
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.inner.delete(name)
    }

    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        self.inner.create_new(name, data)
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        self.inner.read_small(name)
    }

    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError> {
        self.inner.remove_debris(prefix)
    }

    fn locate(&self, name: &str) -> String {
        self.inner.locate(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keep_to_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let file = crate::open(&format!("file://{}", dir.path().display())).unwrap();
        let storage = Throttled::new(file, 4 << 20);
        let started = Instant::now();
        let mut object = storage.put("a/b").unwrap();
        for _ in 0..8 {
            object.write(&[7u8; 256 << 10]).unwrap();
        }
        object.commit().unwrap();
        // 2 MiB at 4 MiB/s: half a second, less the first burst.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(240) && took < Duration::from_secs(2), "{took:?}");
        assert_eq!(std::fs::metadata(dir.path().join("a/b")).unwrap().len(), 2 << 20);
    }
}
