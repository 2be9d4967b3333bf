//! Where the sink's objects come from and go to: names and encodings per the
//! configured encryption, the target listing as a collection of chains, and
//! the local cache of plain manifests and signatures (the target is the
//! truth; the cache only saves downloading and decrypting).

use super::Config;
use crate::format::collection::{Collection, Set, SetTime};
use crate::format::manifest::Manifest;
use crate::format::names::{self, Encoding as Suffix, Kind};
use plugin_sdk::prelude::*;
use plugin_sdk::storage::{self, Encoding, ObjectReader, ObjectWriter, OpenpgpKeys};
use plugin_sdk::{cache, storage::StoredObject};
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};

/// How this sink's objects are named and encoded.
#[derive(Debug, Clone)]
pub struct Sealing {
    encrypted: bool,
    keys: OpenpgpKeys,
}

impl Sealing {
    /// The sealing the configuration asks for.
    pub fn of(config: &Config) -> Sealing {
        // The host resolves these config keys; the plugin never holds the keys.
        let keys = OpenpgpKeys {
            passphrase: config.passphrase.as_ref().map(|s| s.name().to_string()),
            recipients: (!config.recipients.is_empty()).then(|| "recipients".to_string()),
            secret_key: config.secret_key.as_ref().map(|s| s.name().to_string()),
        };
        Sealing { encrypted: config.encryption != "none", keys }
    }

    /// Whether the configured keys can open what this sink seals: a
    /// passphrase for `symmetric`, a secret key for `public-key`.
    pub fn can_open(&self) -> bool {
        self.encrypted && (self.keys.secret_key.is_some() || self.keys.recipients.is_none())
    }

    /// The suffix of written names.
    pub fn suffix(&self) -> Suffix {
        if self.encrypted { Suffix::Gpg } else { Suffix::Gzip }
    }

    fn openpgp(&self) -> Encoding {
        Encoding::Openpgp(self.keys.clone())
    }

    /// Encoding of volumes and signatures.
    pub fn data(&self) -> Encoding {
        if self.encrypted { self.openpgp() } else { Encoding::Gzip }
    }

    /// Encoding of manifests: encrypted like the rest, never gzipped.
    pub fn manifest(&self) -> Encoding {
        if self.encrypted { self.openpgp() } else { Encoding::None }
    }

    /// How to read a remote object, from its name.
    pub fn reading(&self, name: &str) -> Encoding {
        match names::parse(name) {
            Some(p) if p.encrypted => self.openpgp(),
            Some(p) if p.compressed => Encoding::Gzip,
            _ => Encoding::None,
        }
    }

    /// Open a remote object, decoded.
    pub fn open(&self, name: &str) -> Result<ObjectReader, PluginError> {
        storage::get_decoded(name, &self.reading(name))
    }
}

/// The target's listing as chains, with object sizes.
pub fn collection() -> Result<(Collection, HashMap<String, u64>), PluginError> {
    let objects = storage::list()?;
    let sizes = objects.iter().map(|o| (o.name.clone(), o.size)).collect();
    let c = Collection::from_names(objects.iter().map(|o| o.name.as_str()));
    Ok((c, sizes))
}

/// The kind of a set's manifest and signatures.
fn metadata_kinds(time: SetTime) -> (Kind, Kind) {
    match time {
        SetTime::Full(time) => (Kind::FullManifest { time }, Kind::FullSignatures { time }),
        SetTime::Inc(start, end) => (Kind::IncManifest { start, end }, Kind::NewSignatures { start, end }),
    }
}

/// The cache's name for a set's manifest (plain) or signatures (gzip), as
/// duplicity names them in its own cache.
fn cache_name(kind: &Kind) -> String {
    names::name(kind, Suffix::Gzip)
}

fn cache_encoding(kind: &Kind) -> Encoding {
    match kind {
        Kind::FullSignatures { .. } | Kind::NewSignatures { .. } => Encoding::Gzip,
        _ => Encoding::None,
    }
}

/// Read a set's manifest or signatures: from the cache when it has them,
/// else from the target.
fn open_metadata(sealing: &Sealing, kind: &Kind, remote: Option<&String>) -> Result<ObjectReader, PluginError> {
    match cache::get(&cache_name(kind), &cache_encoding(kind)) {
        Ok(r) => return Ok(r),
        Err(PluginError::NotFound(_) | PluginError::Unsupported(_)) => {}
        Err(e) => plugin_sdk::warn!("ignoring the local cache: {}", e.message()),
    }
    let name =
        remote.ok_or_else(|| PluginError::NotFound(format!("{} is missing from the target", cache_name(kind))))?;
    sealing.open(name)
}

/// A set's manifest.
pub fn manifest_of(sealing: &Sealing, set: &Set) -> Result<Manifest, PluginError> {
    let (kind, _) = metadata_kinds(set.time);
    let name = set.manifest.as_ref().ok_or_else(|| PluginError::Corrupt("a set without a manifest".into()))?;
    let mut bytes = Vec::new();
    open_metadata(sealing, &kind, Some(name))?.read_to_end(&mut bytes).map_err(PluginError::from_io)?;
    Manifest::parse(&bytes).map_err(|e| PluginError::Corrupt(format!("{name}: {e}")))
}

/// A set's signatures (full or new), decoded.
pub fn signatures_of(sealing: &Sealing, set: &Set) -> Result<ObjectReader, PluginError> {
    let (_, kind) = metadata_kinds(set.time);
    open_metadata(sealing, &kind, set.signatures.as_ref())
}

/// The remote names of a set's volumes, in manifest order.
pub fn volumes_of(sealing: &Sealing, set: &Set) -> Result<Vec<String>, PluginError> {
    let manifest = manifest_of(sealing, set)?;
    manifest
        .volumes
        .iter()
        .map(|v| {
            set.volumes.get(&v.number).cloned().ok_or_else(|| {
                PluginError::Corrupt(format!("volume {} listed in the manifest is missing from the target", v.number))
            })
        })
        .collect()
}

/// Remove cached metadata of sets the target no longer has complete: the
/// target is the truth (a pruned chain, a target someone else rewrote).
pub fn reconcile_cache(c: &Collection) {
    let Ok(cached) = cache::list() else { return };
    let complete: BTreeSet<SetTime> = c.chains.iter().flat_map(|ch| ch.sets()).map(|s| s.time).collect();
    for object in cached {
        let keep = names::parse(&object.name).is_some_and(|p| {
            let time = match p.kind {
                Kind::FullManifest { time } | Kind::FullSignatures { time } => SetTime::Full(time),
                Kind::IncManifest { start, end } | Kind::NewSignatures { start, end } => SetTime::Inc(start, end),
                _ => return false,
            };
            complete.contains(&time) && !p.partial
        });
        if !keep && let Err(e) = cache::delete(&object.name) {
            plugin_sdk::warn!("cannot remove {} from the local cache: {}", object.name, e.message());
        }
    }
}

/// A manifest or signatures object written to the target and, when there is
/// one, to the local cache.
pub struct MetadataWriter {
    remote: ObjectWriter,
    cached: Option<ObjectWriter>,
}

impl MetadataWriter {
    /// Start writing the object of `kind`.
    pub fn put(sealing: &Sealing, kind: &Kind) -> Result<MetadataWriter, PluginError> {
        let is_manifest = matches!(kind, Kind::FullManifest { .. } | Kind::IncManifest { .. });
        let encoding = if is_manifest { sealing.manifest() } else { sealing.data() };
        let remote = storage::put_encoded(&names::name(kind, sealing.suffix()), &encoding)?;
        let cached = match cache::put(&cache_name(kind), &cache_encoding(kind)) {
            Ok(w) => Some(w),
            Err(PluginError::Unsupported(_)) => None,
            Err(e) => {
                plugin_sdk::warn!("not caching {}: {}", cache_name(kind), e.message());
                None
            }
        };
        Ok(MetadataWriter { remote, cached })
    }

    /// Make the remote object durable and visible, then the cached copy.
    pub fn finish(self) -> Result<StoredObject, PluginError> {
        let stored = self.remote.finish()?;
        if let Some(c) = self.cached
            && let Err(e) = c.finish()
        {
            plugin_sdk::warn!("could not update the local cache: {}", e.message());
        }
        Ok(stored)
    }
}

impl Write for MetadataWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.remote.write_all(data)?;
        if let Some(c) = &mut self.cached
            && c.write_all(data).is_err()
        {
            // A cache that cannot be written is dropped, never a reason to fail.
            self.cached = None;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
