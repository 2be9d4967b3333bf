//! The `directory` source: walks a local tree in duplicity order and hands
//! file content to the host only when the sink asks for it.
//!
//! The walk ([`walk`]) is plain Rust over two small traits, [`walk::Tree`]
//! and [`walk::Log`], so it is tested natively against `std::fs`; in the
//! component the tree is the host's `filesystem` capability and the log is
//! the host's log.

pub use plugin_tree_walk as walk;

#[cfg(test)]
mod tests;

use plugin_sdk::prelude::*;
use serde::Deserialize;
use walk::{Excludes, Log, Tree, Walker};

/// The source's table in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The tree to back up, an absolute path.
    pub path: String,
    /// Glob patterns on paths relative to `path`; `*` stays within one
    /// component, `**` crosses them. An excluded directory takes its subtree.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Config {
    /// Check what serde cannot and compile the excludes. No I/O.
    pub fn check(&self) -> Result<Excludes, PluginError> {
        if !self.path.starts_with('/') {
            return Err(PluginError::Config(format!("path: must be an absolute path, got {:?}", self.path)));
        }
        // The host refuses any path with `..` as leaving the grant; say so now.
        if self.path.split('/').any(|c| c == "..") {
            return Err(PluginError::Config(format!("path: must not contain \"..\", got {:?}", self.path)));
        }
        Excludes::new(&self.exclude)
    }
}

/// The plugin.
pub struct Directory;

impl Source for Directory {
    type Config = Config;
    type Session = DirSession<HostTree, HostLog>;

    fn info() -> PluginInfo {
        plugin_info!("directory", "Backs up a local directory tree with its POSIX metadata")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(vec![Want::ReadPath(config.path.clone())])
    }

    fn open(config: Config, _context: RunContext) -> Result<Self::Session, PluginError> {
        DirSession::new(HostTree, &config, HostLog)
    }
}

/// One run: the walk in progress, over any [`Tree`], reporting to any [`Log`].
pub struct DirSession<T: Tree, L: Log> {
    walker: Walker<T>,
    log: L,
}

impl<T: Tree, L: Log> DirSession<T, L> {
    /// Check `config` and look at its root: a directory, or an error (a root
    /// that is missing fails with the tree's own error, naming the path).
    pub fn new(tree: T, config: &Config, log: L) -> Result<Self, PluginError> {
        let excludes = config.check()?;
        let walker = Walker::new(tree, config.path.as_bytes(), excludes)?;
        Ok(DirSession { walker, log })
    }
}

impl<T: Tree + 'static, L: Log + 'static> Session for DirSession<T, L> {
    fn next(&mut self, max: usize) -> Result<Vec<Entry>, PluginError> {
        self.walker.next_batch(max, &mut self.log)
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.walker.open(path)
    }

    fn open_content(&mut self, path: &[u8]) -> Result<Content, PluginError> {
        self.walker.open_content(path)
    }
}

/// The host's `filesystem` capability as a [`Tree`]. Only usable inside the
/// component: natively the host imports are stubs that panic.
pub struct HostTree;

impl Tree for HostTree {
    type Listing = plugin_sdk::fs::Listing;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        plugin_sdk::fs::lstat(path)
    }

    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
        plugin_sdk::fs::list_dir(path)
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        Ok(Box::new(plugin_sdk::fs::open(path)?))
    }

    fn open_content(&self, path: &[u8]) -> Result<Content, PluginError> {
        Ok(Content::Chunks(Box::new(plugin_sdk::fs::open(path)?)))
    }
}

/// The host's log as a [`Log`]. Only usable inside the component.
pub struct HostLog;

impl Log for HostLog {
    fn warn(&mut self, message: String) {
        plugin_sdk::log::write(plugin_sdk::log::Level::Warn, &message);
    }

    fn debug(&mut self, message: String) {
        plugin_sdk::log::write(plugin_sdk::log::Level::Debug, &message);
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(Directory);
