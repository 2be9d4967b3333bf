//! The snapshot's files as the walk's [`Tree`]: the host's `filesystem`
//! capability (`access = "local"`) or its `sftp` capability.

use std::rc::Rc;

use plugin_sdk::sftp::{ConnectOptions, Session};
use plugin_sdk::{Content, Metadata, PluginError};
use plugin_tree_walk::{Child, Tree};

use crate::config::Config;

/// Where the snapshot is read.
pub enum SnapTree {
    /// Through the filesystem capability.
    Local,
    /// Over SFTP.
    Sftp(Rc<Session>),
}

impl SnapTree {
    /// Connect over SFTP as the config says.
    pub fn sftp(config: &Config) -> Result<SnapTree, PluginError> {
        let (host, port) = config.ssh_endpoint()?;
        let options = ConnectOptions {
            host,
            port,
            user: config.ssh_user.clone().unwrap_or_default(),
            key_file: config.ssh_key.clone().unwrap_or_default(),
            key_passphrase_secret: config.ssh_key_passphrase.as_ref().map(|s| s.name().to_owned()),
            known_hosts: config.known_hosts.clone().unwrap_or_default(),
        };
        Ok(SnapTree::Sftp(Rc::new(Session::connect(&options)?)))
    }
}

impl Tree for SnapTree {
    type Listing = Box<dyn Iterator<Item = Result<Child, PluginError>>>;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        match self {
            SnapTree::Local => plugin_sdk::fs::lstat(path),
            SnapTree::Sftp(session) => session.lstat(path),
        }
    }

    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
        match self {
            SnapTree::Local => Ok(Box::new(plugin_sdk::fs::list_dir(path)?)),
            SnapTree::Sftp(session) => {
                Ok(Box::new(session.read_dir(path)?.into_iter().map(|(name, meta)| Ok((name, Ok(meta))))))
            }
        }
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        match self {
            SnapTree::Local => Ok(Box::new(plugin_sdk::fs::open(path)?)),
            SnapTree::Sftp(session) => Ok(Box::new(session.open(path)?)),
        }
    }

    fn open_content(&self, path: &[u8]) -> Result<Content, PluginError> {
        Ok(Content::Chunks(match self {
            SnapTree::Local => Box::new(plugin_sdk::fs::open(path)?),
            SnapTree::Sftp(session) => Box::new(session.open(path)?),
        }))
    }
}
