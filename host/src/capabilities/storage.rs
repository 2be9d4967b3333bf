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

    /// Every object under the source's place.
    pub fn list(&self) -> Result<Vec<wit::ObjectInfo>, PluginError> {
        match &*self.backend {
            Backend::File(b) => b.list(&self.prefix),
        }
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
/// another source's objects or anything outside the target.
fn check_name(name: &str) -> Result<(), PluginError> {
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
        Ok(self.table.get_mut(&this)?.write(&data))
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
        for good in ["a", "dir/obj.gpg", "duplicity-full.20261122T111118Z.vol1.difftar.gpg"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn objects_appear_only_when_finished_and_carry_their_sha1() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let ctx = StorageCtx::new(Arc::new(Backend::from_url(&url).unwrap()), "docs");
        let none = wit::Encoding::None;
        let mut w = ctx.put("a/obj", &none).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        assert!(ctx.list().unwrap().is_empty(), "half-written object is visible");
        let stored = w.finish().unwrap();
        assert_eq!(stored.sha1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
        assert_eq!(stored.size, 11);
        let listed = ctx.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name.as_str(), listed[0].size), ("a/obj", 11));

        // A dropped writer leaves the old object and no debris.
        let mut w = ctx.put("a/obj", &none).unwrap();
        w.write(b"partial").unwrap();
        drop(w);
        let mut content = String::new();
        std::io::Read::read_to_string(&mut ctx.get("a/obj", &none).unwrap().reader, &mut content).unwrap();
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
            w.write(chunk).unwrap();
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
        std::io::Read::read_to_end(&mut ctx.get("v.gz", &wit::Encoding::Gzip).unwrap().reader, &mut back).unwrap();
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
            w.write(chunk).unwrap();
        }
        let stored = w.finish().unwrap();
        let on_disk = std::fs::read(tmp.path().join("docs/v.gpg")).unwrap();
        assert_eq!(stored.sha1, hex::encode(Sha1::digest(&on_disk)));
        assert!(!on_disk.windows(8).any(|w| w == &data[1000..1008]), "plaintext is visible");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut ctx.get("v.gpg", &keys).unwrap().reader, &mut back).unwrap();
        assert!(back == data);

        let wrong = StorageCtx::new(backend, "docs").with_keys(ring("other"));
        match wrong.get("v.gpg", &keys).map(|_| ()) {
            Err(PluginError::PermissionDenied(m)) => assert!(m.contains("passphrase") && !m.contains("s3cret"), "{m}"),
            other => panic!("a wrong passphrase opened it: {other:?}"),
        }
    }
}
