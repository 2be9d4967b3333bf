//! The `imap` source: every folder of an IMAP account as a Maildir
//! (`Archiv/2024/cur/0000000042.1700000000.imap`), with flags as attributes,
//! read without changing the account (EXAMINE, `BODY.PEEK[]`).
//!
//! The walk ([`walk`]) is plain Rust over the [`walk::Mailbox`] trait and
//! tested natively with a fake account; in the component the mailbox is the
//! host's `imap` capability, which holds the connection and the password.
//!
//! the `imap` source, plain Rust over a `Mailbox` trait (tested natively with a
//! fake account), glue over `plugin_sdk::imap`. `walk.rs`: LIST once, the
//! folders laid out as Maildirs in a `BTreeMap` keyed by path components
//! (duplicity's index order); each folder is EXAMINEd and its metadata fetched
//! (one `UID FETCH 1:n`) when the walk reaches it; bodies only on `open`, in
//! batches of that message and the ones after it in the same folder
//! (`batch_messages`, `batch_mib`), dropped when the walk passes them.
//! `names.rs`: escaping of levels, `<uid>.<uidvalidity>.imap`, `maildir.info`.
//! `writer.rs`: `restore --to imap://…` (CREATE, APPEND with flags and date,
//! skipping messages the target folder holds).

pub mod names;
pub mod walk;
pub mod writer;

#[cfg(test)]
mod tests;

use plugin_sdk::imap::{Folder, FolderStatus, MessageMeta, Security};
use plugin_sdk::prelude::*;
use serde::Deserialize;
use walk::{Batch, Filter, Log, Mailbox, Walk};
use writer::{TargetUrl, Writer};

/// Messages per body fetch unless `batch_messages` says otherwise.
pub const DEFAULT_BATCH_MESSAGES: u32 = 500;
/// MiB per body fetch unless `batch_mib` says otherwise.
pub const DEFAULT_BATCH_MIB: u32 = 16;

/// How the connection is protected (`security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityConfig {
    /// TLS from the first byte, port 993 by default.
    #[default]
    Tls,
    /// STARTTLS, port 143 by default.
    Starttls,
    /// No TLS, only to a loopback address, port 143 by default.
    Plain,
}

/// The source's table in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The IMAP server's host name or address.
    pub host: String,
    /// Its port; 993 for `tls`, 143 otherwise.
    pub port: Option<u16>,
    /// `tls` (default), `starttls` or `plain`.
    #[serde(default)]
    pub security: SecurityConfig,
    /// A PEM file with the CA certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// The login name.
    pub user: String,
    /// The password, a secret (`{ env = "X" }` or `{ file = "/path" }`).
    pub password: Secret,
    /// Folders to back up (glob patterns on decoded names); all without it.
    #[serde(default)]
    pub include: Vec<String>,
    /// Folders to leave out (glob patterns; a parent takes its children).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Most messages fetched in one round trip.
    pub batch_messages: Option<u32>,
    /// Most MiB fetched in one round trip (a larger message comes alone).
    pub batch_mib: Option<u32>,
}

impl Config {
    /// The port, given or the default for the security.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.default_port())
    }

    /// The default port for the security.
    pub fn default_port(&self) -> u16 {
        match self.security {
            SecurityConfig::Tls => 993,
            SecurityConfig::Starttls | SecurityConfig::Plain => 143,
        }
    }

    /// `host:port` as grants and messages name it.
    pub fn endpoint(&self) -> String {
        endpoint(&self.host, self.port())
    }

    /// Check what serde cannot; no I/O.
    pub fn check(&self) -> Result<(Filter, Batch), PluginError> {
        if self.host.is_empty() {
            return Err(PluginError::Config("host: must not be empty".into()));
        }
        if self.port == Some(0) {
            return Err(PluginError::Config("port: must be 1 to 65535".into()));
        }
        if self.user.is_empty() {
            return Err(PluginError::Config("user: must not be empty".into()));
        }
        if self.security == SecurityConfig::Plain && !is_loopback(&self.host) {
            return Err(PluginError::Config(format!(
                "security: \"plain\" would send the password to {} in the clear; it is only allowed to a \
                 loopback address (use \"tls\" or \"starttls\")",
                self.endpoint()
            )));
        }
        if let Some(ca) = &self.ca_file
            && !ca.starts_with('/')
        {
            return Err(PluginError::Config(format!("ca_file: must be an absolute path, got {ca:?}")));
        }
        let messages = self.batch_messages.unwrap_or(DEFAULT_BATCH_MESSAGES);
        if !(1..=10_000).contains(&messages) {
            return Err(PluginError::Config(format!("batch_messages: must be 1 to 10000, got {messages}")));
        }
        let mib = self.batch_mib.unwrap_or(DEFAULT_BATCH_MIB);
        if !(1..=256).contains(&mib) {
            return Err(PluginError::Config(format!("batch_mib: must be 1 to 256, got {mib}")));
        }
        let filter = Filter::new(&self.include, &self.exclude)?;
        Ok((filter, Batch { messages: messages as usize, bytes: u64::from(mib) << 20 }))
    }

    /// What the host's `imap.connect` takes.
    pub fn server(&self) -> plugin_sdk::imap::Server {
        plugin_sdk::imap::Server {
            host: self.host.clone(),
            port: self.port(),
            security: match self.security {
                SecurityConfig::Tls => Security::Tls,
                SecurityConfig::Starttls => Security::Starttls,
                SecurityConfig::Plain => Security::Plain,
            },
            ca_file: self.ca_file.clone(),
            user: self.user.clone(),
            password_secret: self.password.name().to_string(),
        }
    }
}

/// Whether `host` names this machine (`localhost`, `127.0.0.0/8`, `::1`); the
/// host's client checks the address it connects to as well.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// `host:port`, bracketed for IPv6.
pub fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The plugin.
pub struct Imap;

impl Source for Imap {
    type Config = Config;
    type Session = ImapSession;

    fn info() -> PluginInfo {
        plugin_info!("imap", "Backs up every folder of an IMAP account as Maildirs, without changing a flag")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(vec![Want::Connect(config.endpoint())])
    }

    fn open(config: Config, _context: RunContext) -> Result<ImapSession, PluginError> {
        let (filter, batch) = config.check()?;
        let connection = plugin_sdk::imap::connect(&config.server())?;
        let walk = Walk::new(HostMailbox(connection), HostLog, config.endpoint(), &filter, batch)?;
        Ok(ImapSession { walk })
    }

    /// `restore --to imap://user@host[:port]`: the security, CA file and
    /// password (the `password` secret) are the pipeline source's; the port
    /// defaults as for the source.
    fn open_writer(config: Config, target: &str) -> Result<Box<dyn SourceWriter>, PluginError> {
        config.check()?;
        let url = TargetUrl::parse(target)?;
        let mut server = config.server();
        server.port = url.port.unwrap_or(config.default_port());
        server.host = url.host;
        server.user = url.user;
        let shown = format!("imap://{}@{}", server.user, endpoint(&server.host, server.port));
        let connection = plugin_sdk::imap::connect(&server)?;
        Ok(Box::new(Writer::new(HostMailbox(connection), HostLog, shown)?))
    }
}

impl<M: Mailbox + 'static, L: Log + 'static> SourceWriter for Writer<M, L> {
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        Writer::add(self, &entry)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        Writer::write(self, data)
    }
    fn end_entry(&mut self) -> Result<(), PluginError> {
        Writer::end_entry(self)
    }
    fn finish(&mut self) -> Result<String, PluginError> {
        Writer::finish(self)
    }
}

/// One run.
pub struct ImapSession {
    walk: Walk<HostMailbox, HostLog>,
}

impl Session for ImapSession {
    fn next(&mut self, max: usize) -> Result<Vec<Entry>, PluginError> {
        self.walk.next_batch(max)
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.walk.open(path)
    }

    fn finish(&mut self, _outcome: Outcome) -> Result<(), PluginError> {
        plugin_sdk::log::write(
            plugin_sdk::log::Level::Debug,
            &format!("fetched {} message bodies in {} round trips", self.walk.bodies_fetched, self.walk.fetches),
        );
        self.walk.finish()
    }
}

/// The host's `imap` capability as a [`Mailbox`]. Only usable inside the component.
pub struct HostMailbox(plugin_sdk::imap::Connection);

impl Mailbox for HostMailbox {
    fn list_folders(&mut self) -> Result<Vec<Folder>, PluginError> {
        self.0.list_folders()
    }
    fn examine(&mut self, raw: &str) -> Result<FolderStatus, PluginError> {
        self.0.examine(raw)
    }
    fn fetch_meta(&mut self, first: u32, last: u32) -> Result<Vec<MessageMeta>, PluginError> {
        self.0.fetch_meta(first, last)
    }
    fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, PluginError> {
        self.0.fetch_bodies(uids)
    }
    fn create_folder(&mut self, raw: &str) -> Result<(), PluginError> {
        self.0.create_folder(raw)
    }
    fn append(&mut self, raw: &str, flags: &[String], internal_date: i64, body: &[u8]) -> Result<(), PluginError> {
        self.0.append(raw, flags, internal_date, body)
    }
    fn logout(&mut self) -> Result<(), PluginError> {
        self.0.logout()
    }
}

/// The host's log as a [`Log`]. Only usable inside the component.
pub struct HostLog;

impl Log for HostLog {
    fn warn(&mut self, message: String) {
        plugin_sdk::log::write(plugin_sdk::log::Level::Warn, &message);
    }
    fn status(&mut self, message: String) {
        plugin_sdk::log::status(&message);
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(Imap);
