//! The `directory` source: walks a local tree in duplicity order and hands
//! file content to the host only when the sink asks for it.
//!
//! The walk ([`walk`]) is plain Rust over a small [`walk::Tree`] trait, so it
//! is tested natively against `std::fs`; in the component the tree is the
//! host's `filesystem` capability.

pub mod walk;

use plugin_sdk::prelude::*;
use serde::Deserialize;

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
    /// Check what serde cannot and compile the excludes.
    pub fn check(&self) -> Result<walk::Excludes, PluginError> {
        if !self.path.starts_with('/') {
            return Err(PluginError::Config(format!("path: must be an absolute path, got {:?}", self.path)));
        }
        walk::Excludes::new(&self.exclude)
    }
}

/// The plugin.
pub struct Directory;

impl Source for Directory {
    type Config = Config;
    type Session = Session;

    fn info() -> PluginInfo {
        plugin_info!("directory", "Backs up a local directory tree with its POSIX metadata")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(vec![Want::ReadPath(config.path.clone())])
    }

    fn open(config: Config, _context: RunContext) -> Result<Session, PluginError> {
        let excludes = config.check()?;
        let root = config.path.trim_end_matches('/').to_string();
        let root = if root.is_empty() { "/".to_string() } else { root };
        let walker = walk::Walker::new(host::HostTree, root.into_bytes(), excludes)?;
        Ok(Session { walker })
    }
}

/// One run: the walk in progress.
pub struct Session {
    walker: walk::Walker<host::HostTree>,
}

impl plugin_sdk::Session for Session {
    fn next(&mut self, max: usize) -> Result<Vec<Entry>, PluginError> {
        self.walker.next_batch(max, &mut |warning| plugin_sdk::warn!("{warning}"))
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.walker.open(path)
    }
}

/// The host's filesystem capability as a [`walk::Tree`].
mod host {
    use super::walk::Tree;
    use plugin_sdk::{Metadata, PluginError};

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
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(Directory);
