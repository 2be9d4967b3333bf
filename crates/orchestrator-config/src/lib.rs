//! The pipeline file: parsing and validation.
//!
//! Pure by design: it reads the file and nothing else (no network, no secret
//! values, no plugins), so `orchestrator validate` is safe anywhere. Every
//! problem is reported with file, line, column and key, all in one pass.

mod error;
mod interval;
mod notify;
mod parse;
mod secret;

pub use error::{ConfigError, ConfigErrors};
pub use interval::parse_interval;
pub use notify::{EmailSettings, EmailTls, Notifier, NotifierKind, NotifyEvent, Setting};
pub use orchestrator_schedule::Schedule;
pub use secret::{SecretValue, Secrets, redact, without_inline_values};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed, checked pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The file as given, for messages.
    pub file: PathBuf,
    /// Stable identity: names the cache directory and locks, never the hostname.
    pub name: String,
    /// Where the pipeline's cache lives, resolved against the file's directory.
    pub cache_dir: Option<PathBuf>,
    /// Jobs run at the same time.
    pub concurrency: usize,
    /// When `daemon` runs the sources that have no `schedule` of their own.
    pub schedule: Option<Schedule>,
    /// The IANA zone schedules are read in (checked to exist); the system's
    /// when absent.
    pub timezone: Option<String>,
    /// Each scheduled run starts up to this much later, at random, so many
    /// machines on one schedule do not hit a target at once.
    pub schedule_jitter: Duration,
    /// A scheduled time missed while the daemon was down runs once at start.
    pub catch_up: bool,
    /// Where `daemon` serves Prometheus metrics (`/metrics`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// After each run, store this file (sealed as each sink seals) in its
    /// targets, so a restore can start from a target alone.
    pub store_pipeline: bool,
    /// Sources in file order.
    pub sources: Vec<PluginInstance>,
    /// Sinks in file order.
    pub sinks: Vec<Sink>,
    /// `[notify.NAME]` tables in file order.
    pub notify: Vec<Notifier>,
}

impl Pipeline {
    /// A source's schedule: its own, or the pipeline's.
    pub fn schedule_of<'a>(&'a self, source: &'a PluginInstance) -> Option<&'a Schedule> {
        source.schedule.as_ref().or(self.schedule.as_ref())
    }
}

/// A sink table: its plugin instance and the host's sink keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    /// The plugin instance.
    pub instance: PluginInstance,
    /// Storage URL the host opens for the sink.
    pub target: Option<String>,
    /// The `[sinks.NAME.storage]` table: how the host reaches the target
    /// (logins, host keys); secrets as `{"secret": "storage.<key>"}`. Never
    /// given to the plugin.
    pub storage: serde_json::Map<String, serde_json::Value>,
    /// The secret references of `storage`, keys `storage.<key>`.
    pub storage_secrets: Vec<SecretRef>,
    /// Sources backed up into this sink (every source when not listed).
    pub inputs: Vec<String>,
}

/// Whether a table is under `[sources]` or `[sinks]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `[sources.NAME]`
    Source,
    /// `[sinks.NAME]`
    Sink,
}

/// Which component a table runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// `plugin = "directory"`: compiled into the binary.
    Builtin(String),
    /// `plugin = { path = "x.wasm", sha256 = "…" }`: a third-party component.
    File {
        /// Resolved against the pipeline file's directory.
        path: PathBuf,
        /// Pin of the component's content, when given: 64 hex digits, kept
        /// in lower case (upper case in the file is accepted) so it compares
        /// equal to a computed digest.
        sha256: Option<String>,
    },
}

/// Where a secret's value comes from. Holds names and paths only, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `{ env = "NAME" }`
    Env(String),
    /// `{ file = "/run/secrets/x" }`, resolved against the file's directory.
    File(PathBuf),
}

/// A secret reference found in a plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Key path (`password`, `auth.token`, `keys.0`).
    pub key: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

/// Extra grants from a plugin's `allow` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Trees it may read besides those in its configuration.
    pub read: Vec<String>,
    /// Secrets it may read itself.
    pub reveal: Vec<String>,
    /// Network endpoints `host:port`.
    pub connect: Vec<String>,
    /// URL bases.
    pub http: Vec<String>,
    /// Program ids.
    pub exec: Vec<String>,
}

/// Resource limits from a plugin's `limits` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory cap of the plugin instance.
    pub memory_mb: u64,
    /// Longest one call into the plugin may take.
    pub call_timeout: Duration,
    /// Longest a whole job may take.
    pub timeout: Option<Duration>,
    /// A sink's uploads, in bytes per second, all objects together.
    pub upload_rate: Option<u64>,
    /// A sink's parts in flight per object (multipart uploads).
    pub upload_concurrency: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: 512,
            call_timeout: Duration::from_secs(600),
            timeout: None,
            upload_rate: None,
            upload_concurrency: None,
        }
    }
}

/// One `[sources.NAME]` or `[sinks.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInstance {
    /// The table's name.
    pub name: String,
    /// Source or sink.
    pub kind: PluginKind,
    /// The component it runs.
    pub plugin: PluginRef,
    /// The plugin's own keys as a JSON object, secrets replaced by
    /// `{"secret": "<key path>"}`.
    pub config: serde_json::Value,
    /// The secret references taken out of `config`.
    pub secrets: Vec<SecretRef>,
    /// Extra grants.
    pub allow: Allow,
    /// Limits.
    pub limits: Limits,
    /// A source's own `schedule` for `daemon` (sources only).
    pub schedule: Option<Schedule>,
    /// Line of the table's `[header]` (or of its name when the table is
    /// written as a dotted key or an inline table), for errors about the
    /// whole table.
    pub header_line: usize,
    /// Line of each top-level key of the table, so errors a plugin reports
    /// about its keys can point at them.
    pub key_lines: BTreeMap<String, usize>,
}

impl PluginInstance {
    /// The line of `key` (its first segment), or of the table's header.
    pub fn line_of(&self, key: &str) -> usize {
        let first = key.split(['.', '[']).next().unwrap_or("");
        self.key_lines.get(first).copied().unwrap_or(self.header_line)
    }
}

/// Read and check a pipeline file.
pub fn load(path: &Path) -> Result<Pipeline, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: None,
            message: format!("cannot read the pipeline file: {e}"),
        }])),
    }
}

/// Check a pipeline given as text; `path` names it in messages and anchors
/// relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Pipeline, ConfigErrors> {
    parse::Parser::new(text, path).run()
}
