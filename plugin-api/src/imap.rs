//! IMAP accounts reached through the host (the `imap` host interface, WIT
//! 0.1.4). The host connects, does TLS and logs in with the password it looks
//! up by the secret's config key; the plugin never holds the password.
//!
//! ```ignore
//! use plugin_sdk::imap::{self, Security, Server};
//! let conn = imap::connect(&Server {
//!     host: "imap.example.org".into(),
//!     port: 993,
//!     security: Security::Tls,
//!     ca_file: None,
//!     user: "alice".into(),
//!     password_secret: config.password.name().into(),
//! })?;
//! for folder in conn.list_folders()? { /* … */ }
//! ```

use crate::PluginError;
use crate::bindings::source::orchestrator::plugin::imap as host;

pub use host::{Folder, FolderStatus, MessageMeta, Security, Server};

/// A logged-in connection to one account (the host holds the socket).
pub struct Connection {
    inner: Option<host::Connection>,
}

/// Connect to `server` and log in; the endpoint must have been granted with a
/// `connect("host:port")` want.
pub fn connect(server: &Server) -> Result<Connection, PluginError> {
    Ok(Connection { inner: Some(host::connect(server)?) })
}

impl Connection {
    fn inner(&self) -> Result<&host::Connection, PluginError> {
        self.inner.as_ref().ok_or_else(|| PluginError::Other("the IMAP connection was logged out".into()))
    }

    /// Every folder, `\Noselect` ones included (marked).
    pub fn list_folders(&self) -> Result<Vec<Folder>, PluginError> {
        self.inner()?.list_folders()
    }

    /// Open the folder `raw` read-only.
    pub fn examine(&self, raw: &str) -> Result<FolderStatus, PluginError> {
        self.inner()?.examine(raw)
    }

    /// Metadata of the messages with UIDs `first..=last` of the examined folder.
    pub fn fetch_meta(&self, first: u32, last: u32) -> Result<Vec<MessageMeta>, PluginError> {
        self.inner()?.fetch_meta(first, last)
    }

    /// The bodies of the messages `uids` of the examined folder that still exist.
    pub fn fetch_bodies(&self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, PluginError> {
        self.inner()?.fetch_bodies(uids)
    }

    /// Create the folder `raw` (an existing one is fine).
    pub fn create_folder(&self, raw: &str) -> Result<(), PluginError> {
        self.inner()?.create_folder(raw)
    }

    /// Store a message with its flags and INTERNALDATE.
    pub fn append(&self, raw: &str, flags: &[String], internal_date: i64, body: &[u8]) -> Result<(), PluginError> {
        self.inner()?.append(raw, flags, internal_date, body)
    }

    /// End the session politely; later calls fail.
    pub fn logout(&mut self) -> Result<(), PluginError> {
        match self.inner.take() {
            Some(c) => c.logout(),
            None => Ok(()),
        }
    }
}
