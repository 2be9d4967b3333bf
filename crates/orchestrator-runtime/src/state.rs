//! What a store holds for one plugin instance: WASI (with nothing granted),
//! the host capabilities it was granted, and its limits.

use crate::capabilities::filesystem::FsCtx;
use crate::capabilities::http::HttpCtx;
use crate::capabilities::imap::ImapCtx;
use crate::capabilities::log::{LogCtx, StderrToLog};
use crate::capabilities::secrets::SecretsCtx;
use crate::capabilities::sftp::SftpCtx;
use crate::grants::Granted;
use orchestrator_config::Secrets;
use orchestrator_storage::Place;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Resource limits of one plugin instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Cap on the plugin's linear memory.
    pub memory_bytes: usize,
    /// Longest a single call into the plugin may take.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 512 << 20, call_timeout: Duration::from_secs(600) }
    }
}

/// What one plugin instance may use, decided before it is built: an
/// instance never gains a grant after it starts. An instance that only
/// answers `info` or `validate` gets [`Grants::none`].
#[derive(Default)]
pub struct Grants {
    /// What `validate` asked for and the pipeline granted.
    pub granted: Granted,
    /// Its resolved secrets (revealed to the plugin only as `granted.reveal`
    /// says; used on its behalf by the capabilities).
    pub secrets: Secrets,
    /// Where a sink stores objects.
    pub storage: Option<Place>,
    /// A sink's local cache directory.
    pub cache: Option<Place>,
    /// The string values of its configuration: the files (a CA file) a
    /// capability may read on its behalf must be among them.
    pub config_values: Vec<String>,
}

impl Grants {
    /// Nothing at all: no files, network, secrets or storage.
    pub fn none() -> Grants {
        Grants::default()
    }
}

/// The store data of one plugin instance.
pub struct PluginState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: LogCtx,
    pub(crate) secrets: SecretsCtx,
    pub(crate) fs: Option<FsCtx>,
    pub(crate) imap: ImapCtx,
    pub(crate) http: HttpCtx,
    pub(crate) sftp: SftpCtx,
    pub(crate) storage: Option<Place>,
    pub(crate) cache: Option<Place>,
}

impl PluginState {
    /// State for a plugin shown as `label` with `grants`. WASI gets no
    /// environment, arguments, preopened directories, stdin or network; the
    /// plugin's stderr goes to the log.
    pub fn new(label: &str, grants: Grants, limits: &Limits) -> Result<PluginState, String> {
        let Grants { granted, secrets, storage, cache, config_values } = grants;
        let secrets = SecretsCtx::new(secrets, granted.reveal.clone());
        let log = LogCtx::new(label, secrets.all_values());
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(StderrToLog::new(log.clone()));
        wasi.stdout(StderrToLog::new(log.clone()));
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let fs = if granted.read.is_empty() { None } else { Some(FsCtx::new(&granted.read)?) };
        Ok(PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { limit: limits.memory_bytes, hit: false },
            log,
            secrets,
            fs,
            http: HttpCtx::new(&granted.http, config_values.clone()),
            sftp: SftpCtx::new(&granted.connect, config_values.clone()),
            imap: ImapCtx::new(granted.connect.clone(), config_values),
            storage,
            cache,
        })
    }

    /// The plugin's log context.
    pub fn log(&self) -> &LogCtx {
        &self.log
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and remembers that the cap was hit, so a crash that
/// follows can be explained as what it is.
pub struct MemoryLimiter {
    limit: usize,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    /// The cap in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

impl crate::bindings::source::orchestrator::plugin::types::Host for PluginState {}
