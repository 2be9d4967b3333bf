//! The OpenPGP keys a sink may have its objects sealed and opened with. The
//! sink names them by configuration key (`passphrase`, `recipients`,
//! `secret_key`); the host looks the values up here and never hands them to
//! the plugin.

use crate::{OpenpgpKeys, Secrets, Storage, StorageError};
use orchestrator_openpgp::{OpenKey, SealKey, SealingKey};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Deflate level when the sink's config sets none: the fastest, because on
/// two cores level 6 costs four times the CPU for a tenth less size.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;

/// A sink instance's key material: its secrets, and its configuration for
/// the lists of public-key files.
#[derive(Debug, Clone)]
pub struct KeyRing {
    secrets: Secrets,
    config: serde_json::Value,
    /// Relative key file names are resolved against this (the pipeline
    /// file's directory).
    base: PathBuf,
    /// Deflate level for gzip and OpenPGP objects (`compression_level`).
    level: u32,
    /// The sealing key of the run, prepared once: deriving a key from a
    /// passphrase takes a tenth of a second, and a run seals many objects.
    prepared: Arc<Mutex<Option<(String, SealingKey)>>>,
    /// The opening key, kept for the same reason: its passphrase remembers
    /// the keys its S2K derivations gave (one per run that sealed a chain),
    /// and a secret key is parsed once.
    opening: Arc<Mutex<Option<(String, OpenKey)>>>,
    /// Where the S2K salt of this sink's objects of one source is kept (an
    /// object in the local cache): every run seals with the salt of the
    /// first, so a restore of the chain derives the key once, not once per
    /// run. Gone with the cache, a new salt is drawn.
    salt_store: Option<(Arc<dyn Storage>, String)>,
}

impl Default for KeyRing {
    /// No keys, the default compression level.
    fn default() -> KeyRing {
        KeyRing::new(Secrets::default(), serde_json::Value::Null, PathBuf::new())
    }
}

impl KeyRing {
    /// Keys from a sink's secrets and configuration JSON.
    pub fn new(secrets: Secrets, config: serde_json::Value, base: PathBuf) -> KeyRing {
        let level = config
            .get("compression_level")
            .and_then(serde_json::Value::as_u64)
            .map_or(DEFAULT_COMPRESSION_LEVEL, |l| l.min(9) as u32);
        KeyRing { secrets, config, base, level, prepared: Arc::default(), opening: Arc::default(), salt_store: None }
    }

    /// Keep the S2K salt as object `name` of `store` (see the field).
    pub fn with_salt_store(mut self, store: Arc<dyn Storage>, name: String) -> KeyRing {
        self.salt_store = Some((store, name));
        self
    }

    fn stored_salt(&self) -> Option<[u8; 8]> {
        let (store, name) = self.salt_store.as_ref()?;
        let (bytes, _) = store.read_small_checked(name).ok()??;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut salt = [0u8; 8];
        hex::decode_to_slice(text.trim(), &mut salt).ok()?;
        Some(salt)
    }

    fn store_salt(&self, salt: [u8; 8]) {
        if let Some((store, name)) = &self.salt_store
            && let Err(e) = store.replace(name, format!("{}\n", hex::encode(salt)).as_bytes())
        {
            // Only restores get slower: each run's sets then need a derivation of their own.
            tracing::debug!("cannot keep the S2K salt in the cache: {e}");
        }
    }

    /// Deflate level of compressed objects.
    pub fn compression_level(&self) -> u32 {
        self.level
    }

    /// The prepared sealing key for `k`, made on first use.
    pub fn sealing_key(&self, k: &OpenpgpKeys) -> Result<SealingKey, StorageError> {
        let id = format!("{:?}/{:?}", k.passphrase, k.recipients);
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, key)) = prepared.as_ref()
            && *cached == id
        {
            return Ok(key.clone());
        }
        let stored = self.stored_salt();
        let key = SealingKey::with_salt(&self.seal_key(k)?, stored)
            .map_err(|e| StorageError::Config(format!("cannot encrypt with the configured key: {e}")))?
            .with_compression(self.level);
        if let (None, Some(salt)) = (stored, key.salt()) {
            self.store_salt(salt);
        }
        *prepared = Some((id, key.clone()));
        Ok(key)
    }

    fn secret(&self, key: &str) -> Result<String, StorageError> {
        self.secrets.get(key).map(|v| v.expose().to_string()).ok_or_else(|| {
            StorageError::Config(format!("{key}: must be a secret, e.g. {key} = {{ env = \"VARIABLE\" }}"))
        })
    }

    fn files(&self, key: &str) -> Result<Vec<PathBuf>, StorageError> {
        let value = key.split('.').try_fold(&self.config, |v, k| v.get(k));
        let list = value
            .and_then(|v| v.as_array())
            .ok_or_else(|| StorageError::Config(format!("{key}: expected a list of files with armored public keys")))?;
        list.iter()
            .map(|f| {
                f.as_str()
                    .map(|s| self.base.join(s))
                    .ok_or_else(|| StorageError::Config(format!("{key}: expected file names")))
            })
            .collect()
    }

    /// The key that seals an object: the recipients' public keys when the
    /// sink names them, else the passphrase.
    pub fn seal_key(&self, k: &OpenpgpKeys) -> Result<SealKey, StorageError> {
        if let Some(key) = &k.recipients {
            let mut all = Vec::new();
            for file in self.files(key)? {
                let armored = std::fs::read(&file).map_err(|e| {
                    StorageError::Config(format!("{key}: cannot read public key file {}: {e}", file.display()))
                })?;
                let keys = orchestrator_openpgp::read_public_keys(&armored).map_err(|e| {
                    StorageError::Config(format!("{key}: {} holds no usable public key: {e}", file.display()))
                })?;
                all.extend(keys);
            }
            return Ok(SealKey::Recipients(all));
        }
        match &k.passphrase {
            Some(key) => Ok(SealKey::Passphrase(self.secret(key)?)),
            None => Err(StorageError::Config("encryption needs a passphrase or recipients".into())),
        }
    }

    /// The key that opens an object: the secret key when the sink names
    /// one (unlocked by the passphrase), else the passphrase.
    pub fn open_key(&self, k: &OpenpgpKeys) -> Result<OpenKey, StorageError> {
        let id = format!("{:?}/{:?}/{:?}", k.passphrase, k.recipients, k.secret_key);
        let mut opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, key)) = opening.as_ref()
            && *cached == id
        {
            return Ok(key.clone());
        }
        let key = self.read_open_key(k)?;
        *opening = Some((id, key.clone()));
        Ok(key)
    }

    fn read_open_key(&self, k: &OpenpgpKeys) -> Result<OpenKey, StorageError> {
        let passphrase = k.passphrase.as_deref().map(|key| self.secret(key)).transpose()?;
        if let Some(key) = &k.secret_key {
            let armored = self.secret(key)?;
            let secret = orchestrator_openpgp::read_secret_key(armored.as_bytes())
                .map_err(|e| StorageError::Config(format!("{key}: not a usable armored secret key: {e}")))?;
            return Ok(OpenKey::SecretKey { key: secret, passphrase });
        }
        if k.recipients.is_some() {
            return Err(StorageError::Config(
                "secret_key: reading public-key archives needs the recipients' armored secret key, e.g. \
                 secret_key = { file = \"/root/backup.sec.asc\" } (and passphrase, if the key has one)"
                    .into(),
            ));
        }
        match passphrase {
            Some(p) => Ok(OpenKey::Passphrase(p.into())),
            None => Err(StorageError::Config(
                "reading encrypted archives needs passphrase (symmetric) or secret_key (public-key)".into(),
            )),
        }
    }

    /// A person's sentence for an OpenPGP failure.
    pub fn describe_open_error(&self, e: orchestrator_openpgp::Error) -> StorageError {
        match e {
            // Its own kind, so a sink can tell a wrong key from damage.
            orchestrator_openpgp::Error::WrongKey(m) => StorageError::PermissionDenied(format!("cannot decrypt: {m}")),
            orchestrator_openpgp::Error::Unsupported(m) => StorageError::Unsupported(m),
            orchestrator_openpgp::Error::Io(e) => StorageError::Io(format!("reading an encrypted object: {e}")),
            other => StorageError::Corrupt(format!("cannot decrypt: {other}")),
        }
    }
}

/// The recipients in an armored public key file, each as its primary key's
/// fingerprint and its user IDs (for the recovery kit).
pub fn public_key_fingerprints(armored: &[u8]) -> Result<Vec<(String, Vec<String>)>, String> {
    let keys = orchestrator_openpgp::read_public_keys(armored).map_err(|e| e.to_string())?;
    Ok(keys.iter().map(|k| (k.fingerprint(), k.user_ids())).collect())
}
