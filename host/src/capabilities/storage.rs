//! Named objects in a sink's target, scoped to one source's place in it.
//!
//! Backends are a closed set chosen by the target URL's scheme; the plugin
//! sees only object names. Every object is written to a temporary name and
//! renamed when complete, so no reader ever sees half an object, and an
//! interrupted write leaves the older object untouched.

mod encode;
mod file;
mod keys;

use crate::runtime::bindings::PluginError;
use crate::runtime::bindings::sink::orchestrator::plugin::storage as wit;
use crate::runtime::state::PluginState;
use std::sync::Arc;
use wasmtime::component::Resource;

pub use encode::{ObjectReader, ObjectWriter};
pub use file::FileBackend;
pub use keys::KeyRing;

/// Where a sink's objects live.
#[derive(Debug)]
pub enum Backend {
    /// `file:///absolute/path`
    File(FileBackend),
}

impl Backend {
    /// The backend for a target URL.
    pub fn from_url(url: &str) -> Result<Backend, String> {
        let (scheme, _) =
            url.split_once("://").ok_or_else(|| format!("target `{url}` is not a URL (expected file:///path)"))?;
        match scheme {
            "file" => Ok(Backend::File(FileBackend::from_url(url)?)),
            "sftp" | "s3" => Err(format!("target scheme `{scheme}://` is not supported yet; use file:///path")),
            other => Err(format!("unknown target scheme `{other}://` (expected file://)")),
        }
    }

    // Host-side operations on small whole objects (the run lock, see
    // `crate::lock`), by full name in the target. Plugins never reach these:
    // their names are checked by `check_name`, which refuses reserved names.

    /// Create `name` holding `data` only if no object has that name: `false`
    /// when one has. The object never appears half-written.
    pub fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, PluginError> {
        check_plain(name)?;
        match self {
            Backend::File(b) => b.create_new(name, data),
        }
    }

    /// The content of a small object and when it was last written (seconds
    /// since the epoch, if the backend knows); `None` when there is none.
    pub fn read_small(&self, name: &str) -> Result<Option<SmallObject>, PluginError> {
        check_plain(name)?;
        match self {
            Backend::File(b) => b.read_small(name),
        }
    }

    /// Replace `name` with `data` atomically (temporary object, then rename).
    pub fn replace(&self, name: &str, data: &[u8]) -> Result<(), PluginError> {
        check_plain(name)?;
        let mut object = match self {
            Backend::File(b) => b.put(name)?,
        };
        object.write(data)?;
        object.commit()
    }

    /// Remove `name`; a missing one is fine.
    pub fn remove(&self, name: &str) -> Result<(), PluginError> {
        check_plain(name)?;
        match self {
            Backend::File(b) => b.delete(name),
        }
    }

    /// Remove the temporary objects interrupted writes left under `prefix`;
    /// returns how many. Only safe while no one else writes there (under the
    /// run lock).
    pub fn remove_debris(&self, prefix: &str) -> Result<u64, PluginError> {
        check_plain(prefix)?;
        match self {
            Backend::File(b) => b.remove_debris(prefix),
        }
    }

    /// Where a person finds object `name`: a path for `file://` targets.
    pub fn locate(&self, name: &str) -> String {
        match self {
            Backend::File(b) => b.root().join(name).display().to_string(),
        }
    }
}

/// A small object's content, and when it was last written (seconds since the
/// epoch) if the backend knows.
pub type SmallObject = (Vec<u8>, Option<i64>);

/// Names that start with this (in any component) belong to the host: the run
/// lock and temporary objects. Plugins can neither list nor name them, so a
/// plugin can neither see nor break the lock.
pub const RESERVED_PREFIX: &str = ".orchestrator-";

fn is_reserved(name: &str) -> bool {
    name.split('/').any(|c| c.starts_with(RESERVED_PREFIX))
}

/// Storage granted to one plugin instance: a backend and the place of the
/// source it works on.
#[derive(Debug, Clone)]
pub struct StorageCtx {
    backend: Arc<Backend>,
    prefix: String,
    keys: Arc<KeyRing>,
}

impl StorageCtx {
    /// Objects of source `prefix` in `backend`.
    pub fn new(backend: Arc<Backend>, prefix: &str) -> StorageCtx {
        StorageCtx { backend, prefix: prefix.to_string(), keys: Arc::default() }
    }

    /// The same storage, sealing and opening OpenPGP objects with `keys`.
    pub fn with_keys(mut self, keys: Arc<KeyRing>) -> StorageCtx {
        self.keys = keys;
        self
    }

    fn full_name(&self, name: &str) -> Result<String, PluginError> {
        check_name(name)?;
        Ok(format!("{}/{name}", self.prefix))
    }

    /// Every object under the source's place, without the host's own.
    pub fn list(&self) -> Result<Vec<wit::ObjectInfo>, PluginError> {
        let mut objects = match &*self.backend {
            Backend::File(b) => b.list(&self.prefix)?,
        };
        objects.retain(|o| !is_reserved(&o.name));
        Ok(objects)
    }

    /// Start writing an object, encoded on its way to the backend.
    pub fn put(&self, name: &str, encoding: &wit::Encoding) -> Result<ObjectWriter, PluginError> {
        let full = self.full_name(name)?;
        let sink = match &*self.backend {
            Backend::File(b) => b.put(&full)?,
        };
        ObjectWriter::start(name, sink, encoding, &self.keys)
    }

    /// Read an object, decoded on its way out.
    pub fn get(&self, name: &str, encoding: &wit::Encoding) -> Result<ObjectReader, PluginError> {
        let full = self.full_name(name)?;
        let raw = match &*self.backend {
            Backend::File(b) => b.get(&full)?,
        };
        ObjectReader::start(raw, encoding, &self.keys)
    }

    /// Remove an object; a missing one is fine.
    pub fn delete(&self, name: &str) -> Result<(), PluginError> {
        let full = self.full_name(name)?;
        match &*self.backend {
            Backend::File(b) => b.delete(&full),
        }
    }
}

/// Names are relative paths of plain components, so a plugin cannot reach
/// another source's objects or anything outside the target, and none is the
/// host's own (the run lock, temporary objects).
fn check_name(name: &str) -> Result<(), PluginError> {
    check_plain(name)?;
    if is_reserved(name) {
        return Err(PluginError::PermissionDenied(format!(
            "object name {name:?} is reserved for the host (names starting with {RESERVED_PREFIX:?})"
        )));
    }
    Ok(())
}

fn check_plain(name: &str) -> Result<(), PluginError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(PluginError::PermissionDenied(format!("object name {name:?} is not a plain relative name")));
    }
    Ok(())
}

/// The part of an object write a backend provides.
pub trait ObjectSink: Send + Sync {
    /// Append bytes.
    fn write(&mut self, data: &[u8]) -> Result<(), PluginError>;
    /// Make the object visible under its final name.
    fn commit(self: Box<Self>) -> Result<(), PluginError>;
}

impl PluginState {
    fn storage(&self) -> Result<&StorageCtx, PluginError> {
        self.storage
            .as_ref()
            .ok_or_else(|| PluginError::PermissionDenied("this sink has no `target` to store into".into()))
    }
}

impl wit::Host for PluginState {
    async fn list_objects(&mut self) -> wasmtime::Result<Result<Vec<wit::ObjectInfo>, PluginError>> {
        Ok(self.storage().and_then(|s| s.list()))
    }

    async fn put(&mut self, name: String) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        self.put_encoded(name, wit::Encoding::None).await
    }

    async fn put_encoded(
        &mut self,
        name: String,
        encoding: wit::Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectWriter>, PluginError>> {
        match self.storage().and_then(|s| s.put(&name, &encoding)) {
            Ok(w) => Ok(Ok(self.table.push(w)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn get(&mut self, name: String) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        self.get_decoded(name, wit::Encoding::None).await
    }

    async fn get_decoded(
        &mut self,
        name: String,
        encoding: wit::Encoding,
    ) -> wasmtime::Result<Result<Resource<ObjectReader>, PluginError>> {
        match self.storage().and_then(|s| s.get(&name, &encoding)) {
            Ok(r) => Ok(Ok(self.table.push(r)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete(&mut self, name: String) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.storage().and_then(|s| s.delete(&name)))
    }
}

impl wit::HostObjectWriter for PluginState {
    async fn write(
        &mut self,
        this: Resource<ObjectWriter>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.table.get_mut(&this)?.write(data))
    }

    async fn finish(
        &mut self,
        this: Resource<ObjectWriter>,
    ) -> wasmtime::Result<Result<wit::StoredObject, PluginError>> {
        Ok(self.table.get_mut(&this)?.finish())
    }

    async fn drop(&mut self, this: Resource<ObjectWriter>) -> wasmtime::Result<()> {
        // Dropping an unfinished writer discards the temporary object (the
        // backend's sink cleans up in its own Drop).
        self.table.delete(this)?;
        Ok(())
    }
}

impl wit::HostObjectReader for PluginState {
    async fn read(&mut self, this: Resource<ObjectReader>, max: u32) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        Ok(self.table.get_mut(&this)?.read(max))
    }

    async fn drop(&mut self, this: Resource<ObjectReader>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    #[test]
    fn names_must_be_plain_and_relative() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "./a", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "dir/obj.gpg", "duplicity-full.20261122T111118Z.vol1.difftar.gpg", "a.orchestrator-x"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_hosts_own_objects_are_neither_listed_nor_reachable() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let backend = Arc::new(Backend::from_url(&url).unwrap());
        let ctx = StorageCtx::new(backend.clone(), "docs");
        assert!(backend.create_new("docs/.orchestrator-lock", b"{}").unwrap());
        assert!(backend.create_new("docs/sub/.orchestrator-x/y", b"1").unwrap());
        assert!(!backend.create_new("docs/.orchestrator-lock", b"other").unwrap(), "create_new replaced");
        let mut w = ctx.put("visible", &wit::Encoding::None).unwrap();
        w.write(b"v".to_vec()).unwrap();
        w.finish().unwrap();
        let names: Vec<_> = ctx.list().unwrap().into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["visible"]);
        let none = wit::Encoding::None;
        for name in [".orchestrator-lock", "sub/.orchestrator-x/y", ".orchestrator-tmp-1-2"] {
            let denied = |r: Result<(), PluginError>| matches!(r, Err(PluginError::PermissionDenied(_)));
            assert!(denied(ctx.get(name, &none).map(|_| ())), "{name}");
            assert!(denied(ctx.put(name, &none).map(|_| ())), "{name}");
            assert!(denied(ctx.delete(name)), "{name}");
        }
        let (content, modified) = backend.read_small("docs/.orchestrator-lock").unwrap().unwrap();
        assert_eq!(content, b"{}");
        assert!(modified.is_some());
        backend.replace("docs/.orchestrator-lock", b"new").unwrap();
        assert_eq!(backend.read_small("docs/.orchestrator-lock").unwrap().unwrap().0, b"new");
        backend.remove("docs/.orchestrator-lock").unwrap();
        assert!(backend.read_small("docs/.orchestrator-lock").unwrap().is_none());
        assert!(backend.create_new("docs/.orchestrator-lock", b"again").unwrap());

        // The debris of interrupted writes goes; a lock another run is
        // creating right now stays, one that was never finished goes.
        let docs = tmp.path().join("docs");
        std::fs::create_dir_all(docs.join("sub")).unwrap();
        let debris =
            [".orchestrator-tmp-1-1", "sub/.orchestrator-tmp-1-2", ".orchestrator-new-1-3", ".orchestrator-new-1-4"];
        for name in debris {
            std::fs::write(docs.join(name), b"x").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let unfinished = std::fs::File::options().write(true).open(docs.join(".orchestrator-new-1-4")).unwrap();
        unfinished.set_modified(hour_ago).unwrap();
        assert_eq!(backend.remove_debris("docs").unwrap(), 3);
        assert!(docs.join(".orchestrator-new-1-3").exists());
        assert!(!docs.join(".orchestrator-new-1-4").exists());
        assert!(docs.join(".orchestrator-lock").exists() && docs.join("sub/.orchestrator-x/y").exists());
    }

    #[test]
    fn objects_appear_only_when_finished_and_carry_their_sha1() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let ctx = StorageCtx::new(Arc::new(Backend::from_url(&url).unwrap()), "docs");
        let none = wit::Encoding::None;
        let mut w = ctx.put("a/obj", &none).unwrap();
        w.write(b"hello ".to_vec()).unwrap();
        w.write(b"world".to_vec()).unwrap();
        assert!(ctx.list().unwrap().is_empty(), "half-written object is visible");
        let stored = w.finish().unwrap();
        assert_eq!(stored.sha1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
        assert_eq!(stored.size, 11);
        let listed = ctx.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name.as_str(), listed[0].size), ("a/obj", 11));

        // A dropped writer leaves the old object and no debris.
        let mut w = ctx.put("a/obj", &none).unwrap();
        w.write(b"partial".to_vec()).unwrap();
        drop(w);
        let mut content = String::new();
        std::io::Read::read_to_string(&mut ctx.get("a/obj", &none).unwrap(), &mut content).unwrap();
        assert_eq!(content, "hello world");
        assert_eq!(ctx.list().unwrap().len(), 1);
        let files: Vec<_> = std::fs::read_dir(tmp.path().join("docs/a")).unwrap().collect();
        assert_eq!(files.len(), 1);

        ctx.delete("a/obj").unwrap();
        ctx.delete("a/obj").unwrap();
        assert!(matches!(ctx.get("a/obj", &none).map(|_| ()), Err(PluginError::NotFound(_))));
    }

    #[test]
    fn gzip_is_done_by_the_host_and_hashes_the_stored_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let ctx = StorageCtx::new(Arc::new(Backend::from_url(&url).unwrap()), "docs");
        let data: Vec<u8> = b"compressible ".repeat(100_000);
        let mut w = ctx.put("v.gz", &wit::Encoding::Gzip).unwrap();
        for chunk in data.chunks(65536) {
            w.write(chunk.to_vec()).unwrap();
        }
        let stored = w.finish().unwrap();
        let on_disk = std::fs::read(tmp.path().join("docs/v.gz")).unwrap();
        assert!(on_disk.len() < data.len() / 20, "not compressed: {}", on_disk.len());
        assert_eq!(stored.size, on_disk.len() as u64);
        assert_eq!(stored.sha1, hex::encode(Sha1::digest(&on_disk)));
        // Standard gzip: flate2 reads it back, and so does the host.
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&on_disk[..]), &mut plain).unwrap();
        assert_eq!(plain, data);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut ctx.get("v.gz", &wit::Encoding::Gzip).unwrap(), &mut back).unwrap();
        assert_eq!(back, data);
        let keys = wit::OpenpgpKeys { passphrase: Some("passphrase".into()), recipients: None, secret_key: None };
        assert!(matches!(ctx.put("x.gpg", &wit::Encoding::Openpgp(keys)).map(|_| ()), Err(PluginError::Config(_))));
    }

    #[test]
    fn openpgp_is_sealed_with_the_hosts_secret_and_opened_only_with_it() {
        use crate::capabilities::secrets::{SecretValue, SecretsCtx};
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let ring = |value: &str| {
            let secrets = [("passphrase".to_string(), SecretValue::new(value.into()))].into_iter().collect();
            Arc::new(KeyRing::new(SecretsCtx::new(secrets, Default::default()), serde_json::json!({}), "/".into()))
        };
        let backend = Arc::new(Backend::from_url(&url).unwrap());
        let ctx = StorageCtx::new(backend.clone(), "docs").with_keys(ring("s3cret pass"));
        let keys = wit::Encoding::Openpgp(wit::OpenpgpKeys {
            passphrase: Some("passphrase".into()),
            recipients: None,
            secret_key: None,
        });
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = ctx.put("v.gpg", &keys).unwrap();
        for chunk in data.chunks(65536) {
            w.write(chunk.to_vec()).unwrap();
        }
        let stored = w.finish().unwrap();
        let on_disk = std::fs::read(tmp.path().join("docs/v.gpg")).unwrap();
        assert_eq!(stored.sha1, hex::encode(Sha1::digest(&on_disk)));
        assert!(!on_disk.windows(8).any(|w| w == &data[1000..1008]), "plaintext is visible");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut ctx.get("v.gpg", &keys).unwrap(), &mut back).unwrap();
        assert!(back == data);

        let wrong = StorageCtx::new(backend, "docs").with_keys(ring("other"));
        match wrong.get("v.gpg", &keys).map(|_| ()) {
            Err(PluginError::PermissionDenied(m)) => assert!(m.contains("passphrase") && !m.contains("s3cret"), "{m}"),
            other => panic!("a wrong passphrase opened it: {other:?}"),
        }
    }

    #[test]
    fn every_run_seals_with_the_salt_the_cache_keeps_until_the_cache_is_gone() {
        use crate::capabilities::secrets::{SecretValue, SecretsCtx};
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Backend::from_url(&format!("file://{}", cache_dir.path().display())).unwrap());
        let keys = wit::OpenpgpKeys { passphrase: Some("passphrase".into()), recipients: None, secret_key: None };
        // A KeyRing per run, as each run starts the sink afresh.
        let run = || {
            let secrets = [("passphrase".to_string(), SecretValue::new("pw".into()))].into_iter().collect();
            KeyRing::new(SecretsCtx::new(secrets, Default::default()), serde_json::json!({}), "/".into())
                .with_salt_store(cache.clone(), "docs/.orchestrator-s2k-salt".into())
                .sealing_key(&keys)
                .unwrap()
                .salt()
                .unwrap()
        };
        let first = run();
        assert_eq!(run(), first);
        assert_eq!(run(), first);
        std::fs::remove_dir_all(cache_dir.path().join("docs")).unwrap();
        assert_ne!(run(), first, "a new cache draws a new salt");
    }
}
