//! The sink behind the plugin API.

mod backup;
mod reader;
mod store;

use crate::format::collection::{Chain as DupChain, Collection, Set, SetTime};
use crate::format::entries::{Collated, SigSource, SigTar};
use backup::SetKindTimes;
use plugin_sdk::prelude::*;
use plugin_sdk::storage;
use serde::Deserialize;
use std::io::{BufReader, Read};
use store::Sealing;

/// The sink's table in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `symmetric` (passphrase), `public-key` (recipients) or `none` (gzip
    /// volumes, as duplicity's `--no-encryption`).
    pub encryption: String,
    /// Passphrase: seals and opens `symmetric` archives, unlocks `secret_key`.
    pub passphrase: Option<Secret>,
    /// Files with the recipients' armored public keys, for `public-key`.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// An armored secret key, to read `public-key` archives back.
    pub secret_key: Option<Secret>,
    /// Start a new chain when the chain's full set is older than this
    /// (duplicity's syntax: `7D`, `2W`, `1M`, `12h`).
    pub full_if_older_than: Option<String>,
    /// Target size of a volume.
    #[serde(default = "default_volsize")]
    pub volsize_mb: u64,
    /// Keep this many chains; older ones are removed after a good run.
    pub keep_full: Option<u32>,
    /// Remove chains whose newest set is older than this (duplicity's
    /// interval syntax); the newest chain is always kept.
    pub keep_within: Option<String>,
    /// Deflate level of volumes and signatures, 0 to 9. The host compresses
    /// (it reads this key itself); here it is only checked.
    pub compression_level: Option<u32>,
}

fn default_volsize() -> u64 {
    200
}

/// duplicity's interval syntax: one or more `<number><unit>`, units `s`,
/// `m`, `h`, `D`, `W`, `M` (30 days), `Y` (365 days); lowercase `d`, `w`, `y`
/// too.
pub(crate) fn parse_interval(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = std::mem::take(&mut digits).parse().ok()?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'D' | 'd' => 86_400,
            'W' | 'w' => 7 * 86_400,
            'M' => 30 * 86_400,
            'Y' | 'y' => 365 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && total > 0).then_some(total)
}

impl Config {
    fn check(&self) -> Result<(), PluginError> {
        match self.encryption.as_str() {
            "none" => {}
            "symmetric" if self.passphrase.is_none() => {
                return Err(PluginError::Config(
                    "passphrase: encryption = \"symmetric\" needs a passphrase, e.g. passphrase = { env = \"BACKUP_PASSPHRASE\" }"
                        .into(),
                ));
            }
            "symmetric" => {}
            "public-key" if self.recipients.is_empty() => {
                return Err(PluginError::Config(
                    "recipients: encryption = \"public-key\" needs at least one file with an armored public key".into(),
                ));
            }
            "public-key" => {}
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
        if let Some(level) = self.compression_level
            && level > 9
        {
            return Err(PluginError::Config(format!(
                "compression_level: must be between 0 (none) and 9 (smallest), got {level}"
            )));
        }
        if let Some(f) = &self.full_if_older_than
            && parse_interval(f).is_none()
        {
            return Err(PluginError::Config(format!(
                "full_if_older_than: `{f}` is not an interval (examples: 7D, 2W, 1M, 12h)"
            )));
        }
        if let Some(k) = &self.keep_within
            && parse_interval(k).is_none()
        {
            return Err(PluginError::Config(format!(
                "keep_within: `{k}` is not an interval (examples: 90D, 12W, 6M, 1Y)"
            )));
        }
        if self.keep_full == Some(0) {
            return Err(PluginError::Config("keep_full: must be at least 1 (the chain being written)".into()));
        }
        Ok(())
    }
}

/// The plugin.
pub struct DuplicitySink;

fn describe(set: &Set, sizes: &std::collections::HashMap<String, u64>) -> BackupSet {
    let kind = match set.time {
        SetTime::Full(_) => SetKind::Full,
        SetTime::Inc(..) => SetKind::Incremental,
    };
    let size = set.names().map(|n| sizes.get(n).copied().unwrap_or(0)).sum();
    BackupSet { kind, time: set.time.end(), volumes: set.volumes.len() as u32, size, changed_entries: None }
}

/// The chain's state at its end, from its sigtars (cached or remote).
fn chain_state(sealing: &Sealing, chain: &DupChain) -> Result<Collated, PluginError> {
    let mut sources: Vec<Box<dyn SigSource>> = Vec::new();
    let buffer = reader::stream_buffer(chain.sets().count());
    for set in chain.sets() {
        let reader = store::signatures_of(sealing, set)?;
        sources.push(Box::new(SigTar::new(BufReader::with_capacity(buffer, reader))));
    }
    Collated::new(sources).map_err(|e| PluginError::Corrupt(format!("the chain's signatures cannot be read: {e}")))
}

/// An incremental sealed with another key than its chain would leave the
/// chain unrestorable with either key, so the key must open the chain's
/// newest manifest first. It is read from the target, not the cache: the
/// cache is plain and proves nothing about the key.
fn check_key(sealing: &Sealing, chain: &DupChain) -> Result<(), PluginError> {
    let Some(name) = chain.sets().next_back().and_then(|s| s.manifest.as_ref()) else { return Ok(()) };
    let mut sink = std::io::sink();
    match sealing.open(name).and_then(|mut r| std::io::copy(&mut r, &mut sink).map_err(PluginError::from_io)) {
        Ok(_) => Ok(()),
        Err(PluginError::PermissionDenied(m)) => Err(PluginError::PermissionDenied(format!(
            "the configured key does not open the current chain ({name}: {m}); appending to it would \
             make it unrestorable. Use the key the chain was written with, or run with --full to start a \
             new chain under the new key"
        ))),
        Err(e) => Err(e),
    }
}

/// Full or incremental, and why.
fn plan(
    config: &Config,
    sealing: &Sealing,
    context: &BackupContext,
    c: &Collection,
) -> Result<(SetKindTimes, Option<Collated>), PluginError> {
    let full = (SetKindTimes::Full { time: context.time }, None);
    let Some(chain) = c.latest() else { return Ok(full) };
    if context.force_full {
        plugin_sdk::info!("starting a new chain: a full backup was asked for");
        return Ok(full);
    }
    if let Some(age) = config.full_if_older_than.as_deref().and_then(parse_interval)
        && chain.full.time.end() + age <= context.time
    {
        plugin_sdk::info!(
            "starting a new chain: the last full backup is older than {}",
            config.full_if_older_than.as_deref().unwrap_or_default()
        );
        return Ok(full);
    }
    if sealing.can_open() {
        check_key(sealing, chain)?;
    }
    match chain_state(sealing, chain) {
        Ok(old) => Ok((SetKindTimes::Inc { start: chain.end(), end: context.time }, Some(old))),
        Err(e @ PluginError::PermissionDenied(_)) => Err(e),
        Err(e) => {
            // Without the chain's signatures an incremental cannot know what
            // changed; a new chain is the safe way on.
            plugin_sdk::warn!(
                "starting a new chain: the signatures of the current one cannot be read ({}); with public-key \
                 encryption, keep the cache directory or set secret_key so incrementals can continue",
                e.message()
            );
            Ok(full)
        }
    }
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
        let sealing = Sealing::of(&config);
        // An interrupted run left objects of a set without a manifest: they
        // belong to no backup, so remove them before writing a new set.
        let (c, _) = store::collection()?;
        for set in &c.incomplete {
            for name in set.names() {
                plugin_sdk::info!("removing {name}, left over by an interrupted run");
                storage::delete(name)?;
            }
        }
        store::reconcile_cache(&c);
        if let Some(latest) = c.latest()
            && latest.end() >= context.time
        {
            return Err(PluginError::Other(format!(
                "the newest backup of {} is not older than this run; wait a second and run again",
                context.source_name
            )));
        }
        let (set, old) = plan(&config, &sealing, &context, &c)?;
        backup::DupBackup::new(set, sealing, config.volsize_mb << 20, old)
    }

    fn open_reader(config: Config, request: ReadRequest) -> Result<reader::DupReader, PluginError> {
        let sealing = Sealing::of(&config);
        let (c, _) = store::collection()?;
        let time = request.time.unwrap_or(i64::MAX);
        let chain = c.chain_at(time).ok_or_else(|| {
            PluginError::NotFound(format!(
                "no backup of source `{}` at or before the requested time",
                request.source_name
            ))
        })?;
        let sets = chain
            .sets_at(time)
            .into_iter()
            .map(|set| store::volumes_of(&sealing, set))
            .collect::<Result<Vec<_>, _>>()?;
        reader::DupReader::new(&sealing, sets, request.path, request.with_content)
    }

    fn status(_config: Config, _source: &str) -> Result<SourceStatus, PluginError> {
        let (c, sizes) = store::collection()?;
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

    fn verify(config: Config, _source: &str) -> Result<VerifyReport, PluginError> {
        let sealing = Sealing::of(&config);
        let (c, _) = store::collection()?;
        let mut report = VerifyReport { objects_checked: 0, entries_checked: 0, problems: Vec::new() };
        for chain in &c.chains {
            let mut readable = true;
            for set in chain.sets() {
                let when = crate::format::time::to_string(set.time.end());
                match verify_set(&sealing, set) {
                    Ok(checked) => report.objects_checked += checked,
                    Err(problems) => {
                        readable = false;
                        report.problems.extend(problems.into_iter().map(|p| format!("set at {when}: {p}")));
                    }
                }
            }
            if !readable {
                continue;
            }
            // Reading the chain at its end decodes every volume of every set
            // and applies every delta.
            match read_all(&sealing, chain) {
                Ok(n) => report.entries_checked += n,
                Err(e) => report.problems.push(format!(
                    "reading the chain of {} back failed: {}",
                    crate::format::time::to_string(chain.full.time.end()),
                    e.message()
                )),
            }
        }
        Ok(report)
    }

    fn prune(config: Config, _source: &str) -> Result<Vec<String>, PluginError> {
        let keep_within = config.keep_within.as_deref().and_then(parse_interval);
        if config.keep_full.is_none() && keep_within.is_none() {
            return Ok(Vec::new());
        }
        let (c, _) = store::collection()?;
        let ends: Vec<i64> = c.chains.iter().map(|chain| chain.end()).collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let doomed = chains_to_remove(&ends, config.keep_full, keep_within, now);
        let mut removed = Vec::new();
        // Whole chains only, oldest first: no kept set depends on them.
        for chain in c.chains.iter().take(doomed) {
            for set in chain.sets().rev() {
                for name in set.names() {
                    storage::delete(name)?;
                    removed.push(name.clone());
                }
            }
        }
        Ok(removed)
    }
}

/// How many of the oldest chains retention removes: those past the newest
/// `keep_full`, and those whose newest set (`ends`, oldest chain first) is
/// older than `keep_within` seconds before `now`. Never the newest chain,
/// and only a run of oldest ones, so no kept chain is left older than a
/// removed one.
fn chains_to_remove(ends: &[i64], keep_full: Option<u32>, keep_within: Option<i64>, now: i64) -> usize {
    let by_count = keep_full.map_or(0, |keep| ends.len().saturating_sub(keep.max(1) as usize));
    let by_age = keep_within.map_or(0, |within| ends.iter().take_while(|&&end| end < now - within).count());
    by_count.max(by_age).min(ends.len().saturating_sub(1))
}

/// Check a set's volumes against the SHA-1s in its manifest, and that its
/// signatures decode; returns the number of objects checked.
fn verify_set(sealing: &Sealing, set: &Set) -> Result<u32, Vec<String>> {
    use sha1::Digest;
    let manifest = store::manifest_of(sealing, set).map_err(|e| vec![e.message().to_string()])?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for v in &manifest.volumes {
        let Some(name) = set.volumes.get(&v.number) else {
            problems.push(format!("volume {} is missing", v.number));
            continue;
        };
        let mut hash = sha1::Sha1::new();
        let hashed = storage::get(name).and_then(|mut object| {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = object.read(&mut buf).map_err(PluginError::from_io)?;
                if n == 0 {
                    return Ok(());
                }
                hash.update(&buf[..n]);
            }
        });
        if let Err(e) = hashed {
            problems.push(format!("{name}: {}", e.message()));
            continue;
        }
        checked += 1;
        let got: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if v.sha1.as_deref().is_some_and(|want| want != got) {
            problems.push(format!("{name}: SHA-1 {got} does not match the manifest"));
        }
    }
    if set.signatures.is_some() {
        let read = store::signatures_of(sealing, set).and_then(|r| {
            let mut sigs = SigTar::new(BufReader::new(r));
            while sigs.next_entry().map_err(|e| PluginError::Corrupt(e.to_string()))?.is_some() {}
            Ok(())
        });
        match read {
            Ok(()) => checked += 1,
            Err(e) => problems.push(format!("signatures: {}", e.message())),
        }
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

/// Read a whole chain at its end, content included; returns the entries.
fn read_all(sealing: &Sealing, chain: &DupChain) -> Result<u64, PluginError> {
    let sets = chain.sets().map(|s| store::volumes_of(sealing, s)).collect::<Result<Vec<_>, _>>()?;
    let mut r = reader::DupReader::new(sealing, sets, None, true)?;
    let mut entries = 0;
    while plugin_sdk::Reader::next(&mut r)?.is_some() {
        entries += 1;
        while !plugin_sdk::Reader::read(&mut r, 1 << 20)?.is_empty() {}
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::{chains_to_remove, parse_interval};

    #[test]
    fn retention_by_count_and_by_age_never_takes_the_newest_chain() {
        let ends = [100, 200, 300, 400];
        assert_eq!(chains_to_remove(&ends, None, None, 1000), 0);
        assert_eq!(chains_to_remove(&ends, Some(2), None, 1000), 2);
        assert_eq!(chains_to_remove(&ends, Some(9), None, 1000), 0);
        // Newest set older than 750 s before 1000: the first two.
        assert_eq!(chains_to_remove(&ends, None, Some(750), 1000), 2);
        // Both rules: whichever removes more.
        assert_eq!(chains_to_remove(&ends, Some(3), Some(750), 1000), 2);
        assert_eq!(chains_to_remove(&ends, Some(1), Some(750), 1000), 3);
        // Backups stopped long ago: the newest chain still stays.
        assert_eq!(chains_to_remove(&ends, None, Some(10), 100_000), 3);
        assert_eq!(chains_to_remove(&[], Some(1), Some(10), 100_000), 0);
    }

    #[test]
    fn intervals_in_duplicitys_syntax() {
        assert_eq!(parse_interval("7D"), Some(7 * 86_400));
        assert_eq!(parse_interval("2W3D"), Some(17 * 86_400));
        assert_eq!(parse_interval("12h"), Some(12 * 3600));
        assert_eq!(parse_interval("1M"), Some(30 * 86_400));
        assert_eq!(parse_interval("30m"), Some(1800));
        for bad in ["", "7", "D", "7X", "0D", "-1D"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }
}
