//! Where backups are stored: named objects in a target, whatever kind of
//! storage holds them.
//!
//! - [`Storage`] is what one kind of storage provides (list, put, get,
//!   delete, and the small exclusive writes the run lock needs); [`open`]
//!   picks the kind from the target URL, and that `match` is the one place a
//!   new kind is added (see `CONTRIBUTING.md`).
//! - [`Place`] is the part of a target one source's backups live in: object
//!   names checked, the host's own objects hidden, and objects encoded on
//!   their way in and out ([`encode`]: gzip and OpenPGP with the sink's
//!   [`KeyRing`], hashed as stored).
//!
//! Every object is written to a temporary name and renamed when complete, so
//! no reader ever sees half an object, and an interrupted write leaves the
//! older object untouched.
//!
//! ```
//! # fn main() -> Result<(), orchestrator_storage::StorageError> {
//! let dir = std::env::temp_dir().join(format!("storage-doc-{}", std::process::id()));
//! let target = orchestrator_storage::open(&format!("file://{}", dir.display()))?;
//! let place = orchestrator_storage::Place::new(target, "docs");
//! let mut object = place.put("hello.txt", &orchestrator_storage::Encoding::None)?;
//! object.write(b"hello".to_vec())?;
//! assert_eq!(object.finish()?.size, 5);
//! assert_eq!(place.list()?[0].name, "hello.txt");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

mod cache;
mod chunk;
mod dry_run;
mod encode;
mod error;
mod file;
mod keys;
mod options;
mod place;
mod rclone;
mod s3;
mod sftp;
mod throttle;

pub use cache::sink_cache_dir;
pub use chunk::{MAX_READ, fill, fill_expecting};
pub use dry_run::DryRun;
pub use encode::{ObjectReader, ObjectWriter};
pub use error::StorageError;
pub use file::FileStorage;
pub use keys::{KeyRing, public_key_fingerprints};
pub use options::StorageOptions;
pub use orchestrator_config::{SecretValue, Secrets};
pub use place::Place;
pub use rclone::RcloneStorage;
pub use s3::S3Storage;
pub use sftp::SftpStorage;

/// Environment variables a kind of storage reads when its table leaves a
/// setting out (an `s3://` target's AWS credentials); the caller puts the
/// ones that are set into [`StorageOptions::environment`].
pub const ENVIRONMENT: &[&str] = s3::ENVIRONMENT;

use std::io::Read;
use std::sync::Arc;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Name relative to the listed place.
    pub name: String,
    /// Stored bytes.
    pub size: u64,
}

/// An object once it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Name relative to its place.
    pub name: String,
    /// Stored bytes (after encoding).
    pub size: u64,
    /// SHA-1 of the stored bytes, lowercase hex.
    pub sha1: String,
}

/// The keys an OpenPGP object is sealed or opened with, each named by the
/// sink's configuration key; the values stay with the host ([`KeyRing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenpgpKeys {
    /// Secret holding a passphrase.
    pub passphrase: Option<String>,
    /// Config key listing files with the recipients' armored public keys.
    pub recipients: Option<String>,
    /// Secret holding an armored secret key.
    pub secret_key: Option<String>,
}

/// How an object is encoded between the plugin and the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// Stored as written.
    None,
    /// gzip, as duplicity writes `.gz` files.
    Gzip,
    /// An OpenPGP message sealed with these keys.
    Openpgp(OpenpgpKeys),
}

/// The largest small object (a run lock, a salt) read back: anything larger
/// was not written by the host.
pub(crate) const MAX_SMALL: u64 = 64 << 10;

/// The error for a small object larger than [`MAX_SMALL`] at `place`.
pub(crate) fn too_large(place: impl std::fmt::Display, size: u64) -> StorageError {
    StorageError::Io(format!(
        "{place} holds {size} bytes, more than the host ever writes there ({MAX_SMALL}); remove it"
    ))
}

/// A small object's content, and when it was last written (seconds since the
/// epoch) if the storage knows.
pub type SmallObject = (Vec<u8>, Option<i64>);

/// One kind of storage: objects by full name (`<source>/<name>`) under the
/// target's root. Names reaching it are already checked plain and relative.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Every object under `prefix` (names relative to it), without temporary
    /// objects and the host's own.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Start writing `name`; nothing is visible under it until `commit`.
    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError>;
    /// Read `name`.
    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError>;
    /// Remove `name`; a missing one is fine.
    fn delete(&self, name: &str) -> Result<(), StorageError>;
    /// Create `name` holding `data` only if no object has that name: `false`
    /// when one has. The object never appears half-written.
    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError>;
    /// The content of a small object and when it was last written; `None`
    /// when there is none.
    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError>;
    /// Remove the temporary objects interrupted writes left under `prefix`;
    /// returns how many. Only safe while no one else writes there (under the
    /// run lock).
    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError>;
    /// Where a person finds object `name` (a path for `file://`).
    fn locate(&self, name: &str) -> String;
}

/// The part of an object write a storage provides.
pub trait ObjectSink: Send + Sync {
    /// Append bytes.
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;
    /// Make the object visible under its final name.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;
}

/// The storage of a target URL that needs no settings (a `file://` one).
pub fn open(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    open_with(url, &StorageOptions::default())
}

/// The kinds of target, as messages list them.
const EXPECTED: &str = "file:///path, sftp://user@host/path, s3://bucket/prefix or rclone:REMOTE:path";

/// The storage of a target URL with its sink's storage table. The one place
/// that knows every kind. Nothing is contacted yet: a storage connects at
/// its first operation, so checking a pipeline touches no target.
pub fn open_with(url: &str, options: &StorageOptions) -> Result<Arc<dyn Storage>, StorageError> {
    let storage = open_kind(url, options)?;
    Ok(match options.upload_rate {
        Some(rate) => Arc::new(throttle::Throttled::new(storage, rate)),
        None => storage,
    })
}

fn open_kind(url: &str, options: &StorageOptions) -> Result<Arc<dyn Storage>, StorageError> {
    // rclone's own remote syntax has no `//`.
    if url.starts_with("rclone:") {
        return Ok(Arc::new(RcloneStorage::new(url, options)?));
    }
    let (scheme, _) = url
        .split_once("://")
        .ok_or_else(|| StorageError::Config(format!("target `{url}` is not a URL (expected {EXPECTED})")))?;
    match scheme {
        "file" => {
            options.only(&[], "file://")?;
            Ok(Arc::new(FileStorage::from_url(url)?))
        }
        "sftp" => Ok(Arc::new(SftpStorage::new(url, options)?)),
        "s3" => Ok(Arc::new(S3Storage::new(url, options)?)),
        other => Err(StorageError::Config(format!("unknown target scheme `{other}://` (expected {EXPECTED})"))),
    }
}

// Host-side operations on small whole objects (the run lock, the S2K salt)
// by full name in the target. Plugins never reach these: their names go
// through `Place`, which refuses reserved names.
impl dyn Storage + '_ {
    /// [`Storage::create_new`] after checking the name.
    pub fn create_new_checked(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        check_plain(name)?;
        self.create_new(name, data)
    }

    /// [`Storage::read_small`] after checking the name.
    pub fn read_small_checked(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        check_plain(name)?;
        self.read_small(name)
    }

    /// Replace `name` with `data` atomically (temporary object, then rename).
    pub fn replace(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        check_plain(name)?;
        let mut object = self.put(name)?;
        object.write(data)?;
        object.commit()
    }

    /// Remove `name`; a missing one is fine.
    pub fn remove(&self, name: &str) -> Result<(), StorageError> {
        check_plain(name)?;
        self.delete(name)
    }

    /// [`Storage::remove_debris`] after checking the prefix.
    pub fn remove_debris_checked(&self, prefix: &str) -> Result<u64, StorageError> {
        check_plain(prefix)?;
        self.remove_debris(prefix)
    }
}

/// Names that start with this (in any component) belong to the host: the run
/// lock and temporary objects. Plugins can neither list nor name them, so a
/// plugin can neither see nor break the lock.
pub const RESERVED_PREFIX: &str = ".orchestrator-";

/// The last component of an object name.
fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The name of an object called `file` in the same directory as `name`
/// (temporaries and markers go beside what they stand for).
fn beside(name: &str, file: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{file}"),
        None => file.to_string(),
    }
}

fn is_reserved(name: &str) -> bool {
    name.split('/').any(|c| c.starts_with(RESERVED_PREFIX))
}

/// Names are relative paths of plain components, so a plugin cannot reach
/// another source's objects or anything outside the target, and none is the
/// host's own (the run lock, temporary objects).
fn check_name(name: &str) -> Result<(), StorageError> {
    check_plain(name)?;
    if is_reserved(name) {
        return Err(StorageError::PermissionDenied(format!(
            "object name {name:?} is reserved for the host (names starting with {RESERVED_PREFIX:?})"
        )));
    }
    Ok(())
}

fn check_plain(name: &str) -> Result<(), StorageError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(StorageError::PermissionDenied(format!("object name {name:?} is not a plain relative name")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
