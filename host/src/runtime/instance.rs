//! Running plugin instances: typed calls with a time limit, and failures that
//! say what happened in words a person can act on.
//!
//! A store is disposable: after a trap or a timeout the instance is marked
//! broken and every later call fails at once with the same explanation.

use super::bindings::sink::SinkPlugin;
use super::bindings::sink::exports::orchestrator::plugin::sink as sink_api;
use super::bindings::source::SourcePlugin;
use super::bindings::source::exports::orchestrator::plugin::source as source_api;
use super::bindings::{Entry, Outcome, PluginError, PluginInfo, Want};
use super::engine::{LoadedPlugin, Runtime, World};
use super::state::{Grants, Limits, PluginState};
use crate::capabilities::log::LogCtx;
use std::time::Duration;
use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why a call into a plugin failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The plugin returned an error.
    Plugin(PluginError),
    /// The plugin trapped (panicked, ran out of memory, misbehaved).
    Crashed(String),
    /// A call did not return in time.
    TimedOut(String),
    /// The plugin could not be started.
    Setup(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Plugin(e) => f.write_str(&e.describe()),
            CallError::Crashed(m) | CallError::TimedOut(m) | CallError::Setup(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}

/// The store of one instance and what the host knows about its health.
struct Instance {
    store: Store<PluginState>,
    call_timeout: Duration,
    broken: Option<CallError>,
}

impl Instance {
    fn new(rt: &Runtime, label: &str, grants: Grants, limits: &Limits) -> Result<Instance, CallError> {
        let state = PluginState::new(label, grants, limits).map_err(CallError::Setup)?;
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))));
        Ok(Instance { store, call_timeout: limits.call_timeout, broken: None })
    }

    /// Give the instance what `validate` asked for and the pipeline granted.
    fn grant(&mut self, granted: &crate::grants::Granted) -> Result<(), CallError> {
        let state = self.store.data_mut();
        state.fs = if granted.read.is_empty() {
            None
        } else {
            Some(crate::capabilities::filesystem::FsCtx::new(&granted.read).map_err(CallError::Setup)?)
        };
        state.secrets.set_revealable(granted.reveal.clone());
        state.imap.set_granted(granted.connect.clone());
        state.http = crate::capabilities::http::HttpCtx::new(&granted.http);
        state.sftp = crate::capabilities::sftp::SftpCtx::new(&granted.connect);
        Ok(())
    }

    fn usable(&self) -> Result<(), CallError> {
        match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Turn the raw outcome of a call into a result, marking the instance
    /// broken after a trap or timeout.
    fn settle<T>(
        &mut self,
        what: &str,
        outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, CallError> {
        let error = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(trap)) => CallError::Crashed(self.explain(what, &trap)),
            Err(_) => CallError::TimedOut(format!(
                "{} did not return from {what} within {} (the limit is `limits.call_timeout`)",
                self.label(),
                humanize(self.call_timeout)
            )),
        };
        self.broken = Some(error.clone());
        Err(error)
    }

    fn label(&self) -> &str {
        self.store.data().log.label()
    }

    fn explain(&self, what: &str, err: &wasmtime::Error) -> String {
        tracing::debug!(plugin = self.label(), "trap during {what}: {err:?}");
        let data = self.store.data();
        let label = data.log.label();
        if data.limiter.hit {
            return format!(
                "{label} exceeded its memory limit of {} MiB during {what} and was stopped \
                 (raise `limits.memory_mb` if it really needs more)",
                data.limiter.limit() >> 20
            );
        }
        let stderr = data.log.last_stderr();
        let panic = stderr
            .iter()
            .position(|l| l.contains("panicked at"))
            .map(|i| stderr[i..].iter().take(3).cloned().collect::<Vec<_>>().join(" "));
        match (err.downcast_ref::<Trap>(), panic) {
            (Some(Trap::UnreachableCodeReached), Some(panic)) => format!("{label} crashed during {what}: {panic}"),
            (Some(Trap::StackOverflow), _) => format!("{label} overflowed its stack during {what} and was stopped"),
            (Some(trap), _) => format!("{label} crashed during {what}: {trap}"),
            (None, _) => {
                let root = err.root_cause().to_string();
                if root.contains("too much data") {
                    format!("{label} tried to pass too much data in one call during {what} and was stopped")
                } else {
                    format!("{label} failed during {what}: {root}")
                }
            }
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Run a call with the instance's time limit and settle its outcome.
macro_rules! guarded {
    ($inst:expr, $what:expr, |$store:ident| $call:expr) => {{
        $inst.usable()?;
        let timeout = $inst.call_timeout;
        let $store = &mut $inst.store;
        let outcome = tokio::time::timeout(timeout, $call).await;
        $inst.settle($what, outcome)
    }};
}

/// Flatten a plugin's own `result` into the call's.
fn plugin<T>(r: Result<Result<T, PluginError>, CallError>) -> Result<T, CallError> {
    r.and_then(|r| r.map_err(CallError::Plugin))
}

/// A running source plugin.
pub struct SourceInstance {
    inst: Instance,
    bindings: SourcePlugin,
}

impl SourceInstance {
    /// Instantiate `plugin` with `grants`, shown in logs as `label`.
    pub async fn new(
        rt: &Runtime,
        plugin: &LoadedPlugin,
        label: &str,
        grants: Grants,
        limits: &Limits,
    ) -> Result<Self, CallError> {
        Runtime::check_world(plugin, World::Source)?;
        let mut inst = Instance::new(rt, label, grants, limits)?;
        let pre = plugin.source.as_ref().expect("checked world");
        let bindings = guarded!(inst, "start-up", |store| pre.instantiate_async(store))?;
        Ok(SourceInstance { inst, bindings })
    }

    /// The plugin's log context (label, warnings, stderr).
    pub fn log(&self) -> &LogCtx {
        self.inst.store.data().log()
    }

    /// Apply the decided grants before the run.
    pub fn grant(&mut self, granted: &crate::grants::Granted) -> Result<(), CallError> {
        self.inst.grant(granted)
    }

    /// `info()`.
    pub async fn info(&mut self) -> Result<PluginInfo, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        guarded!(self.inst, "info", |store| api.call_info(store))
    }

    /// `validate(config)`.
    pub async fn validate(&mut self, config: &str) -> Result<Vec<Want>, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "validate", |store| api.call_validate(store, &config)))
    }

    /// `open(config, context)`: a session.
    pub async fn open(&mut self, config: &str, context: &source_api::RunContext) -> Result<ResourceAny, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "open", |store| api.call_open(store, &config, context)))
    }

    /// `session.next(max)`.
    pub async fn next(&mut self, session: ResourceAny, max: u32) -> Result<Vec<Entry>, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "listing entries", |store| api.session().call_next(store, session, max)))
    }

    /// `session.open(path)`: the content of a file.
    pub async fn open_content(&mut self, session: ResourceAny, path: &[u8]) -> Result<ResourceAny, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "opening a file", |store| api.session().call_open(store, session, path)))
    }

    /// `content.read(max)`.
    pub async fn read(&mut self, content: ResourceAny, max: u32) -> Result<Vec<u8>, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "reading a file", |store| api.content().call_read(store, content, max)))
    }

    /// `session.finish(outcome)`.
    pub async fn finish(&mut self, session: ResourceAny, outcome: Outcome) -> Result<(), CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "finishing the run", |store| api.session().call_finish(store, session, outcome)))
    }

    /// `open-writer(config, target)`: a writer into `target` (`restore --to URL`).
    pub async fn open_writer(&mut self, config: &str, target: &str) -> Result<ResourceAny, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        let (config, target) = (config.to_owned(), target.to_owned());
        plugin(guarded!(self.inst, "opening the restore target", |store| api.call_open_writer(store, &config, &target)))
    }

    /// `writer.add(entry)`.
    pub async fn writer_add(&mut self, writer: ResourceAny, entry: &Entry) -> Result<bool, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "restoring an entry", |store| api.writer().call_add(store, writer, entry)))
    }

    /// `writer.write(data)`.
    pub async fn writer_write(&mut self, writer: ResourceAny, data: &[u8]) -> Result<(), CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "restoring data", |store| api.writer().call_write(store, writer, data)))
    }

    /// `writer.end-entry()`.
    pub async fn writer_end_entry(&mut self, writer: ResourceAny) -> Result<(), CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "restoring an entry", |store| api.writer().call_end_entry(store, writer)))
    }

    /// `writer.finish()`: the plugin's summary.
    pub async fn writer_finish(&mut self, writer: ResourceAny) -> Result<String, CallError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin(guarded!(self.inst, "finishing the restore", |store| api.writer().call_finish(store, writer)))
    }

    /// Drop a resource the plugin handed out.
    pub async fn drop_resource(&mut self, r: ResourceAny) -> Result<(), CallError> {
        guarded!(self.inst, "releasing a resource", |store| r.resource_drop_async(store))
    }
}

/// A running sink plugin.
pub struct SinkInstance {
    inst: Instance,
    bindings: SinkPlugin,
}

impl SinkInstance {
    /// Instantiate `plugin` with `grants`, shown in logs as `label`.
    pub async fn new(
        rt: &Runtime,
        plugin: &LoadedPlugin,
        label: &str,
        grants: Grants,
        limits: &Limits,
    ) -> Result<Self, CallError> {
        Runtime::check_world(plugin, World::Sink)?;
        let mut inst = Instance::new(rt, label, grants, limits)?;
        let pre = plugin.sink.as_ref().expect("checked world");
        let bindings = guarded!(inst, "start-up", |store| pre.instantiate_async(store))?;
        Ok(SinkInstance { inst, bindings })
    }

    /// The plugin's log context.
    pub fn log(&self) -> &LogCtx {
        self.inst.store.data().log()
    }

    /// Apply the decided grants before the run.
    pub fn grant(&mut self, granted: &crate::grants::Granted) -> Result<(), CallError> {
        self.inst.grant(granted)
    }

    /// `info()`.
    pub async fn info(&mut self) -> Result<PluginInfo, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        guarded!(self.inst, "info", |store| api.call_info(store))
    }

    /// `validate(config)`.
    pub async fn validate(&mut self, config: &str) -> Result<Vec<Want>, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "validate", |store| api.call_validate(store, &config)))
    }

    /// `begin-backup(config, context)`.
    pub async fn begin_backup(
        &mut self,
        config: &str,
        context: &sink_api::BackupContext,
    ) -> Result<ResourceAny, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "starting the backup", |store| api.call_begin_backup(store, &config, context)))
    }

    /// `backup.add(entry)`.
    pub async fn add(&mut self, backup: ResourceAny, entry: &Entry) -> Result<bool, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "storing an entry", |store| api.backup().call_add(store, backup, entry)))
    }

    /// `backup.write(data)`.
    pub async fn write(&mut self, backup: ResourceAny, data: &[u8]) -> Result<(), CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "storing data", |store| api.backup().call_write(store, backup, data)))
    }

    /// `backup.end-entry(status)`.
    pub async fn end_entry(&mut self, backup: ResourceAny, status: &sink_api::ContentStatus) -> Result<(), CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "storing an entry", |store| api.backup().call_end_entry(store, backup, status)))
    }

    /// `backup.finish()`.
    pub async fn finish(&mut self, backup: ResourceAny) -> Result<sink_api::BackupSet, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "completing the backup", |store| api.backup().call_finish(store, backup)))
    }

    /// `open-reader(config, request)`.
    pub async fn open_reader(
        &mut self,
        config: &str,
        request: &sink_api::ReadRequest,
    ) -> Result<ResourceAny, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "opening the backup", |store| api.call_open_reader(store, &config, request)))
    }

    /// `reader.next()`.
    pub async fn reader_next(&mut self, reader: ResourceAny) -> Result<Option<Entry>, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "reading the backup", |store| api.reader().call_next(store, reader)))
    }

    /// `reader.read(max)`.
    pub async fn reader_read(&mut self, reader: ResourceAny, max: u32) -> Result<Vec<u8>, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin(guarded!(self.inst, "reading the backup", |store| api.reader().call_read(store, reader, max)))
    }

    /// `status(config, source)`.
    pub async fn status(&mut self, config: &str, source: &str) -> Result<sink_api::SourceStatus, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "status", |store| api.call_status(store, &config, source)))
    }

    /// `verify(config, source)`.
    pub async fn verify(&mut self, config: &str, source: &str) -> Result<sink_api::VerifyReport, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "verify", |store| api.call_verify(store, &config, source)))
    }

    /// `prune(config, source)`.
    pub async fn prune(&mut self, config: &str, source: &str) -> Result<Vec<String>, CallError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin(guarded!(self.inst, "applying retention", |store| api.call_prune(store, &config, source)))
    }

    /// Drop a resource the plugin handed out.
    pub async fn drop_resource(&mut self, r: ResourceAny) -> Result<(), CallError> {
        guarded!(self.inst, "releasing a resource", |store| r.resource_drop_async(store))
    }
}
