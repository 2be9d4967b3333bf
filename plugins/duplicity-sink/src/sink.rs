//! The sink behind the plugin API.

mod backup;
mod reader;

use crate::format::collection::{Collection, Set};
use crate::format::manifest::Manifest;
use plugin_sdk::prelude::*;
use plugin_sdk::storage;
use serde::Deserialize;
use std::io::Read;

/// The sink's table in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `none` (gzip volumes, as duplicity's `--no-encryption`) today;
    /// `symmetric` and `public-key` are coming.
    pub encryption: String,
    /// Passphrase for `symmetric`.
    pub passphrase: Option<Secret>,
    /// Armored public keys for `public-key`.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Start a new chain when the last full set is older than this.
    pub full_if_older_than: Option<String>,
    /// Target size of a volume.
    #[serde(default = "default_volsize")]
    pub volsize_mb: u64,
    /// Keep this many chains; older ones are removed after a good run.
    pub keep_full: Option<u32>,
}

fn default_volsize() -> u64 {
    200
}

impl Config {
    fn check(&self) -> Result<(), PluginError> {
        match self.encryption.as_str() {
            "none" => {}
            "symmetric" | "public-key" => {
                return Err(PluginError::Unsupported(format!(
                    "encryption: `{}` is not supported by this build yet; use encryption = \"none\"",
                    self.encryption
                )));
            }
            other => {
                return Err(PluginError::Config(format!(
                    "encryption: unknown value `{other}` (expected symmetric, public-key or none)"
                )));
            }
        }
        if !(1..=100_000).contains(&self.volsize_mb) {
            return Err(PluginError::Config(format!(
                "volsize_mb: must be between 1 and 100000, got {}",
                self.volsize_mb
            )));
        }
        Ok(())
    }
}

/// The plugin.
pub struct DuplicitySink;

fn collection() -> Result<(Collection, std::collections::HashMap<String, u64>), PluginError> {
    let objects = storage::list()?;
    let sizes = objects.iter().map(|o| (o.name.clone(), o.size)).collect();
    let c = Collection::from_names(objects.iter().map(|o| o.name.as_str()));
    Ok((c, sizes))
}

/// Open an object as its name says it is stored: `.gz` decompressed by the
/// host, `.gpg` (not yet) decrypted, anything else as it is.
fn open_object(name: &str) -> Result<storage::ObjectReader, PluginError> {
    match crate::format::names::parse(name) {
        Some(p) if p.encrypted => Err(PluginError::Unsupported(format!(
            "{name} is encrypted; this build of the duplicity sink cannot open OpenPGP archives yet"
        ))),
        Some(p) if p.compressed => storage::get_decoded(name, &storage::Encoding::Gzip),
        _ => storage::get(name),
    }
}

fn read_object(name: &str) -> Result<Vec<u8>, PluginError> {
    let mut v = Vec::new();
    open_object(name)?.read_to_end(&mut v).map_err(PluginError::from_io)?;
    Ok(v)
}

fn manifest_of(set: &Set) -> Result<Manifest, PluginError> {
    let name = set.manifest.as_ref().ok_or_else(|| PluginError::Corrupt("a set without a manifest".into()))?;
    Manifest::parse(&read_object(name)?).map_err(|e| PluginError::Corrupt(format!("{name}: {e}")))
}

fn describe(set: &Set, sizes: &std::collections::HashMap<String, u64>) -> BackupSet {
    let kind = match set.time {
        crate::format::collection::SetTime::Full(_) => SetKind::Full,
        crate::format::collection::SetTime::Inc(..) => SetKind::Incremental,
    };
    let size = set.names().map(|n| sizes.get(n).copied().unwrap_or(0)).sum();
    BackupSet { kind, time: set.time.end(), volumes: set.volumes.len() as u32, size, changed_entries: None }
}

impl Sink for DuplicitySink {
    type Config = Config;
    type Backup = backup::DupBackup;
    type Reader = reader::DupReader;

    fn info() -> PluginInfo {
        plugin_info!("duplicity-sink", "Stores backups in duplicity's format")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(Vec::new())
    }

    fn begin_backup(config: Config, context: BackupContext) -> Result<backup::DupBackup, PluginError> {
        config.check()?;
        // An interrupted run left objects of a set without a manifest: they
        // belong to no backup, so remove them before writing a new set.
        let (c, _) = collection()?;
        for set in &c.incomplete {
            for name in set.names() {
                plugin_sdk::info!("removing {name}, left over by an interrupted run");
                storage::delete(name)?;
            }
        }
        if let Some(latest) = c.latest()
            && latest.end() >= context.time
        {
            return Err(PluginError::Other(format!(
                "the newest backup of {} is not older than this run; wait a second and run again",
                context.source_name
            )));
        }
        backup::DupBackup::new(context.time, config.volsize_mb << 20)
    }

    fn open_reader(_config: Config, request: ReadRequest) -> Result<reader::DupReader, PluginError> {
        let (c, _) = collection()?;
        let time = request.time.unwrap_or(i64::MAX);
        let chain = c.chain_at(time).ok_or_else(|| {
            PluginError::NotFound(format!(
                "no backup of source `{}` at or before the requested time",
                request.source_name
            ))
        })?;
        let sets = chain.sets_at(time);
        if sets.len() > 1 {
            return Err(PluginError::Unsupported("reading incremental sets is not supported by this build yet".into()));
        }
        let manifest = manifest_of(sets[0])?;
        let volumes = manifest
            .volumes
            .iter()
            .map(|v| {
                sets[0].volumes.get(&v.number).cloned().ok_or_else(|| {
                    PluginError::Corrupt(format!(
                        "volume {} listed in the manifest is missing from the target",
                        v.number
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(reader::DupReader::new(volumes, request.path))
    }

    fn status(_config: Config, _source: &str) -> Result<SourceStatus, PluginError> {
        let (c, sizes) = collection()?;
        let chains =
            c.chains.iter().map(|ch| Chain { sets: ch.sets().map(|s| describe(s, &sizes)).collect() }).collect();
        let mut notes = Vec::new();
        for s in &c.incomplete {
            notes.push(format!(
                "an incomplete set of {} object(s) from an interrupted run (removed by the next run)",
                s.names().count()
            ));
        }
        for s in &c.orphans {
            notes.push(format!(
                "an incremental set at {} that belongs to no chain",
                crate::format::time::to_string(s.time.end())
            ));
        }
        Ok(SourceStatus { chains, notes })
    }

    fn verify(_config: Config, _source: &str) -> Result<VerifyReport, PluginError> {
        use sha1::Digest;
        let (c, _) = collection()?;
        let mut report = VerifyReport { objects_checked: 0, entries_checked: 0, problems: Vec::new() };
        for set in c.chains.iter().flat_map(|ch| ch.sets()) {
            let manifest = match manifest_of(set) {
                Ok(m) => m,
                Err(e) => {
                    report.problems.push(format!("{e:?}"));
                    continue;
                }
            };
            for v in &manifest.volumes {
                let Some(name) = set.volumes.get(&v.number) else {
                    report.problems.push(format!(
                        "volume {} of the set at {} is missing",
                        v.number,
                        crate::format::time::to_string(set.time.end())
                    ));
                    continue;
                };
                let mut hash = sha1::Sha1::new();
                let mut object = storage::get(name)?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = object.read(&mut buf).map_err(PluginError::from_io)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                }
                report.objects_checked += 1;
                let got: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
                if v.sha1.as_deref() != Some(got.as_str()) {
                    report.problems.push(format!("{name}: SHA-1 {got} does not match the manifest"));
                }
            }
            if matches!(set.time, crate::format::collection::SetTime::Full(_)) {
                let names: Vec<String> =
                    manifest.volumes.iter().filter_map(|v| set.volumes.get(&v.number).cloned()).collect();
                let mut r = reader::DupReader::new(names, None);
                loop {
                    match plugin_sdk::Reader::next(&mut r) {
                        Ok(Some(_)) => {
                            report.entries_checked += 1;
                            while !plugin_sdk::Reader::read(&mut r, 1 << 20)?.is_empty() {}
                        }
                        Ok(None) => break,
                        Err(e) => {
                            report.problems.push(format!("reading the set back failed: {e:?}"));
                            break;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    fn prune(config: Config, _source: &str) -> Result<Vec<String>, PluginError> {
        let Some(keep) = config.keep_full else { return Ok(Vec::new()) };
        let (c, _) = collection()?;
        let excess = c.chains.len().saturating_sub(keep.max(1) as usize);
        let mut removed = Vec::new();
        // Whole chains only, oldest first: no kept set depends on them.
        // Manifests go first so a chain interrupted mid-removal is never
        // mistaken for a complete one.
        for chain in c.chains.iter().take(excess) {
            for set in chain.sets().rev() {
                let names: Vec<&String> =
                    set.manifest.iter().chain(set.signatures.iter()).chain(set.volumes.values()).collect();
                for name in names {
                    storage::delete(name)?;
                    removed.push(name.clone());
                }
            }
        }
        Ok(removed)
    }
}
