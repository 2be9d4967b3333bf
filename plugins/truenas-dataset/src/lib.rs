//! The `truenas-dataset` source: each run takes a ZFS snapshot of a dataset
//! through the TrueNAS API, reads the dataset as of that snapshot
//! (`<mountpoint>/.zfs/snapshot/<name>`), and releases the snapshot when the
//! run is over, whatever the outcome.
//!
//! * The TrueNAS protocol is `orchestrator-truenas` (API detection, login,
//!   `pool.snapshot.*` or `zfs.snapshot.*` by version), plain Rust over a
//!   [`orchestrator_truenas::Transport`] that is here the host's `http`
//!   capability ([`transport`]): the API key is a secret the host sends on
//!   the plugin's behalf, never seen by the plugin.
//! * The snapshot is read with the directory source's walk
//!   ([`plugin_tree_walk`]) over the host's `filesystem` capability
//!   (`access = "local"`) or its `sftp` capability (`access = "sftp"`).
//! * With `recursive`, each child dataset's own snapshot is grafted where
//!   the child is mounted ([`graft`]): ZFS shows a child in its parent's
//!   snapshot only as an empty directory.
//! * Snapshots are named `orchestrator-<source>-<run id>`; leftovers of
//!   crashed runs are found by that prefix and swept at the next run, beyond
//!   the `keep_snapshots` newest.

pub mod config;
pub mod graft;
pub mod transport;
pub mod tree;

use config::{Access, Config};
use graft::GraftTree;
use orchestrator_truenas::{ErrorKind, Snapshot, TrueNas, TrueNasError, snapshot_path};
use plugin_sdk::prelude::*;
use plugin_tree_walk::{Excludes, Log, Tree, Walker};
use transport::WitTransport;
use tree::SnapTree;

/// The plugin.
pub struct TrueNasDataset;

/// A TrueNAS error as a plugin error of the right case, its text intact.
pub fn plugin_error(e: &TrueNasError) -> PluginError {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::Auth => PluginError::PermissionDenied(text),
        ErrorKind::DatasetNotFound | ErrorKind::SnapshotNotFound => PluginError::NotFound(text),
        ErrorKind::Unreachable => PluginError::Transient(text),
        ErrorKind::Config => PluginError::Config(text),
        ErrorKind::SnapshotRefused | ErrorKind::Tls | ErrorKind::Protocol => PluginError::Other(text),
    }
}

fn log(level: plugin_sdk::log::Level, message: &str) {
    plugin_sdk::log::write(level, message);
}

/// The host's log as the walk's [`Log`].
pub struct HostLog;

impl Log for HostLog {
    fn warn(&mut self, message: String) {
        log(plugin_sdk::log::Level::Warn, &message);
    }

    fn debug(&mut self, message: String) {
        log(plugin_sdk::log::Level::Debug, &message);
    }
}

impl Source for TrueNasDataset {
    type Config = Config;
    type Session = DatasetSession;

    fn info() -> PluginInfo {
        plugin_info!(
            "truenas-dataset",
            "Backs up a TrueNAS dataset from a ZFS snapshot taken and released per run through the TrueNAS API"
        )
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(config.wants())
    }

    fn open(config: Config, context: RunContext) -> Result<DatasetSession, PluginError> {
        config.check()?;
        DatasetSession::open(config, &context)
    }
}

/// One run: the snapshot taken, its tree being walked, and what is needed to
/// release it.
pub struct DatasetSession {
    config: Config,
    nas: Option<TrueNas<WitTransport>>,
    snapshot: Snapshot,
    prefix: String,
    walker: Walker<GraftTree<SnapTree>>,
    log: HostLog,
    released: bool,
}

/// Letters, digits and `_ - : .` stay; anything else becomes `-`, so any
/// source name makes a valid ZFS snapshot name.
pub fn zfs_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.') { c } else { '-' })
        .collect()
}

/// The snapshot names of one source start with this.
pub fn prefix_of(source: &str) -> String {
    format!("orchestrator-{}-", zfs_safe(source))
}

fn connect(config: &Config) -> Result<TrueNas<WitTransport>, PluginError> {
    let transport = WitTransport::open(config)?;
    TrueNas::connect(transport, config.api_user.as_deref()).map_err(|e| plugin_error(&e))
}

/// Deletes our snapshots beyond the `keep` newest (`list` is oldest first).
/// Returns what could not be deleted, as sentences.
fn sweep(nas: &TrueNas<WitTransport>, config: &Config, prefix: &str, keep: usize, spare: Option<&str>) -> Vec<String> {
    let listed = match nas.list_snapshots(&config.dataset, prefix) {
        Ok(l) => l,
        Err(e) => return vec![format!("listing the snapshots to sweep failed: {e}")],
    };
    let ours: Vec<&Snapshot> = listed.iter().filter(|s| Some(s.id.as_str()) != spare).collect();
    let kept_by_spare = usize::from(spare.is_some_and(|id| listed.iter().any(|s| s.id == id)));
    let keep_others = keep.saturating_sub(kept_by_spare);
    let excess = ours.len().saturating_sub(keep_others);
    let mut failures = Vec::new();
    for snapshot in &ours[..excess] {
        match nas.delete_snapshot(&snapshot.id, config.recursive) {
            Ok(()) => {
                log(plugin_sdk::log::Level::Info, &format!("removed snapshot {} (an earlier run's)", snapshot.id))
            }
            Err(e) if e.kind() == ErrorKind::SnapshotNotFound => {}
            Err(e) => failures.push(e.to_string()),
        }
    }
    failures
}

impl DatasetSession {
    fn open(config: Config, context: &RunContext) -> Result<DatasetSession, PluginError> {
        plugin_sdk::log::status(&format!("connecting to TrueNAS {}", config.api));
        let nas = connect(&config)?;
        log(
            plugin_sdk::log::Level::Debug,
            &format!("TrueNAS {} ({:?}, {} methods)", nas.version(), nas.api(), nas.snapshot_methods().namespace()),
        );
        let mountpoint = nas.dataset_mountpoint(&config.dataset).map_err(|e| plugin_error(&e))?;
        let prefix = prefix_of(&context.source_name);
        // Leftovers of crashed runs, and kept snapshots beyond keep_snapshots
        // (one place is for the snapshot this run takes, if it is kept).
        let keep_before = (config.keep_snapshots as usize).saturating_sub(1);
        for failure in sweep(&nas, &config, &prefix, keep_before, None) {
            log(plugin_sdk::log::Level::Warn, &format!("could not sweep an old snapshot: {failure}"));
        }
        let name = format!("{prefix}{}", zfs_safe(&context.run_id));
        plugin_sdk::log::status(&format!("taking snapshot {}@{name}", config.dataset));
        let snapshot = nas.create_snapshot(&config.dataset, &name, config.recursive).map_err(|e| plugin_error(&e))?;
        log(plugin_sdk::log::Level::Info, &format!("took snapshot {}", snapshot.id));
        // From here on the snapshot exists: release it if the session fails to start.
        let started = Self::start_walk(&config, &nas, &mountpoint, &snapshot.name);
        match started {
            Ok(walker) => {
                Ok(DatasetSession { config, nas: Some(nas), snapshot, prefix, walker, log: HostLog, released: false })
            }
            Err(e) => {
                if let Err(release) = nas.delete_snapshot(&snapshot.id, config.recursive) {
                    log(
                        plugin_sdk::log::Level::Error,
                        &format!("could not release snapshot {}: {release}; delete it on the NAS", snapshot.id),
                    );
                }
                Err(e)
            }
        }
    }

    /// The walk over the snapshot, with the child datasets' snapshots
    /// grafted in when `recursive` (see [`graft`]).
    fn start_walk(
        config: &Config,
        nas: &TrueNas<WitTransport>,
        mountpoint: &str,
        name: &str,
    ) -> Result<Walker<GraftTree<SnapTree>>, PluginError> {
        let (tree, base) = match config.access {
            Access::Local => (SnapTree::Local, config.local_path.as_deref().unwrap_or(mountpoint)),
            Access::Sftp => (SnapTree::sftp(config)?, mountpoint),
        };
        let root = snapshot_path(base, name);
        let parent = Place { dataset: &config.dataset, mountpoint, base, root: &root };
        check_reachable(config, &tree, &parent)?;
        let mut grafts = Vec::new();
        if config.recursive {
            // Asked after the snapshot was taken, so every child listed is in it.
            let children = nas.child_datasets(&config.dataset).map_err(|e| plugin_error(&e))?;
            let (planned, warnings) = graft::plan(&config.dataset, mountpoint, base, name, &children);
            for warning in warnings {
                log(plugin_sdk::log::Level::Warn, &warning);
            }
            grafts = planned;
        }
        let mut tree = GraftTree::new(tree, &root, grafts);
        for (graft, covered) in tree.drop_uncovered() {
            log(
                plugin_sdk::log::Level::Warn,
                &format!(
                    "child dataset {} (mounted at {}) is not backed up: {covered} is not a directory in the snapshot \
                     of its parent",
                    graft.dataset, graft.mountpoint
                ),
            );
        }
        for graft in tree.grafts() {
            let place =
                Place { dataset: &graft.dataset, mountpoint: &graft.mountpoint, base: &graft.base, root: &graft.root };
            check_reachable(config, tree.inner(), &place)?;
            log(plugin_sdk::log::Level::Debug, &format!("child dataset {} is read from {}", graft.dataset, graft.root));
        }
        Walker::new(tree, root.as_bytes(), Excludes::new(&[])?)
    }

    fn release(&mut self) -> Result<(), PluginError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let keep = self.config.keep_snapshots as usize;
        let mut failures = Vec::new();
        if keep == 0 {
            let deleted = self.with_nas(|nas, config, id| nas.delete_snapshot(id, config.recursive));
            match deleted {
                Ok(()) => log(plugin_sdk::log::Level::Info, &format!("released snapshot {}", self.snapshot.id)),
                Err(e) if e.kind() == ErrorKind::SnapshotNotFound => {}
                Err(e) => failures.push(e.to_string()),
            }
        } else {
            log(
                plugin_sdk::log::Level::Info,
                &format!("keeping snapshot {} (keep_snapshots = {keep})", self.snapshot.id),
            );
            if let Some(nas) = &self.nas {
                failures.extend(sweep(nas, &self.config, &self.prefix, keep, Some(&self.snapshot.id)));
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let message = format!(
            "could not release snapshot {} of TrueNAS {}: {}. It stays on the NAS until the next run of this \
             source sweeps it (snapshots named {}*), or delete it yourself (Datasets → {} → Snapshots)",
            self.snapshot.id,
            self.config.api,
            failures.join("; "),
            self.prefix,
            self.config.dataset
        );
        log(plugin_sdk::log::Level::Error, &message);
        Err(PluginError::Other(message))
    }

    /// Runs `op` on the connection, reconnecting once if it was lost (a
    /// WebSocket held through a long backup may be closed by the NAS).
    fn with_nas(
        &mut self,
        op: impl Fn(&TrueNas<WitTransport>, &Config, &str) -> Result<(), TrueNasError>,
    ) -> Result<(), TrueNasError> {
        if let Some(nas) = &self.nas {
            match op(nas, &self.config, &self.snapshot.id) {
                Err(e) if e.kind() == ErrorKind::Unreachable => {
                    log(plugin_sdk::log::Level::Debug, &format!("reconnecting to release the snapshot: {e}"));
                }
                other => return other,
            }
        }
        match connect(&self.config) {
            Ok(nas) => {
                let result = op(&nas, &self.config, &self.snapshot.id);
                self.nas = Some(nas);
                result
            }
            Err(e) => Err(TrueNasError::Protocol {
                url: self.config.api.clone(),
                dataset: self.config.dataset.clone(),
                reason: format!("reconnecting failed: {}", e.message()),
            }),
        }
    }
}

/// A dataset's snapshot as it is read here.
struct Place<'a> {
    dataset: &'a str,
    /// On the NAS.
    mountpoint: &'a str,
    /// Where the mountpoint is read here (`local_path`, or under it for a child).
    base: &'a str,
    /// `<base>/.zfs/snapshot/<name>`.
    root: &'a str,
}

/// The snapshot's directory must be a directory we can read.
fn check_reachable(config: &Config, tree: &SnapTree, place: &Place) -> Result<(), PluginError> {
    let meta = tree.lstat(place.root.as_bytes()).map_err(|e| not_reachable(config, place, &e))?;
    if meta.kind != EntryKind::Directory {
        return Err(not_reachable(config, place, &PluginError::Io("not a directory".into())));
    }
    Ok(())
}

/// The snapshot's directory cannot be read: say why and how to fix it.
fn not_reachable(config: &Config, place: &Place, e: &PluginError) -> PluginError {
    let Place { dataset, mountpoint, base, root } = *place;
    let reason = plugin_tree_walk::reason(e, root);
    let text = match config.access {
        Access::Local => {
            let hint = match (&config.local_path, dataset == config.dataset) {
                (Some(_), true) => " (local_path)",
                (Some(_), false) => " (under local_path, as on the NAS under the parent's mountpoint)",
                (None, _) => " (set local_path if it is mounted elsewhere)",
            };
            format!(
                "the snapshot's files at {root} are not reachable ({reason}). The dataset {dataset} (mounted at \
                 {mountpoint} on the NAS) must be visible here at {base}{hint}, with its .zfs directory. Inside a \
                 container, .zfs/snapshot is an automount that often fails (\"Too many levels of symbolic links\" or \
                 an empty directory): bind-mount the dataset with rshared propagation (docker: --mount \
                 type=bind,source={mountpoint},target={base},readonly,bind-propagation=rshared) and set local_path, \
                 or use access = \"sftp\" to read the snapshot over SFTP from the NAS"
            )
        }
        Access::Sftp => format!(
            "the snapshot's files of dataset {dataset} at {root} are not reachable over SFTP ({reason}): check \
             that ssh_user may read the dataset and that the dataset's snapdir is reachable"
        ),
    };
    match e {
        PluginError::PermissionDenied(_) => PluginError::PermissionDenied(text),
        PluginError::Transient(_) => PluginError::Transient(text),
        _ => PluginError::NotFound(text),
    }
}

impl Session for DatasetSession {
    fn next(&mut self, max: usize) -> Result<Vec<Entry>, PluginError> {
        self.walker.next_batch(max, &mut self.log)
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.walker.open(path)
    }

    fn open_content(&mut self, path: &[u8]) -> Result<Content, PluginError> {
        self.walker.open_content(path)
    }

    fn finish(&mut self, _outcome: Outcome) -> Result<(), PluginError> {
        let result = self.release();
        if let Some(nas) = self.nas.take() {
            nas.close();
        }
        result
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(TrueNasDataset);
