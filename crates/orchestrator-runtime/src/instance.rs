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

/// The runtime crate's one error: why loading a component, starting an
/// instance or a call into it failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// The plugin returned an error.
    #[error("{}", .0.describe())]
    Plugin(PluginError),
    /// The plugin trapped (panicked, ran out of memory, misbehaved).
    #[error("{0}")]
    Crashed(String),
    /// A call did not return in time.
    #[error("{0}")]
    TimedOut(String),
    /// The plugin could not be started.
    #[error("{0}")]
    Setup(String),
    /// The component could not be loaded (not a component, not a plugin of
    /// this API, or the engine could not start).
    #[error("{0}")]
    Load(String),
}

/// Handles to the resources a plugin hands out. They wrap wasmtime's
/// untyped handles so that nothing outside this crate names wasmtime, and so
/// that a reader is never passed where a session belongs.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(ResourceAny);
    };
}
handle!(
    /// A source's `session`: one run's entries.
    Session
);
handle!(
    /// A source's `content`: one file being read.
    Content
);
handle!(
    /// A source's `writer`: a restore into the kind of place it reads.
    Writer
);
handle!(
    /// A sink's `backup`: one set being stored.
    Backup
);
handle!(
    /// A sink's `reader`: a stored backup being read.
    Reader
);

/// The store of one instance and what the host knows about its health.
struct Instance {
    store: Store<PluginState>,
    call_timeout: Duration,
    broken: Option<RuntimeError>,
}

impl Instance {
    /// See [`plugin!`].
    fn flatten<T>(&self, r: Result<Result<T, PluginError>, RuntimeError>) -> Result<T, RuntimeError> {
        let log = self.store.data().log();
        r.and_then(|r| r.map_err(|e| RuntimeError::Plugin(e.map_message(|m| log.redact(m)))))
    }

    fn new(rt: &Runtime, label: &str, grants: Grants, limits: &Limits) -> Result<Instance, RuntimeError> {
        let state = PluginState::new(label, grants, limits).map_err(RuntimeError::Setup)?;
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))));
        Ok(Instance { store, call_timeout: limits.call_timeout, broken: None })
    }

    fn usable(&self) -> Result<(), RuntimeError> {
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
    ) -> Result<T, RuntimeError> {
        let error = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(trap)) => RuntimeError::Crashed(self.explain(what, &trap)),
            Err(_) => RuntimeError::TimedOut(format!(
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

/// A call whose answer is the plugin's own `result`: flattened into the
/// call's, the plugin's error message with the instance's secret values
/// redacted as its log lines are (a plugin may echo what it was given).
macro_rules! plugin {
    ($inst:expr, $call:expr) => {{
        let outcome = $call;
        $inst.flatten(outcome)
    }};
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
    ) -> Result<Self, RuntimeError> {
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

    /// `info()`.
    pub async fn info(&mut self) -> Result<PluginInfo, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        guarded!(self.inst, "info", |store| api.call_info(store))
    }

    /// `validate(config)`.
    pub async fn validate(&mut self, config: &str) -> Result<Vec<Want>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "validate", |store| api.call_validate(store, &config)))
    }

    /// `open(config, context)`: a session.
    pub async fn open(&mut self, config: &str, context: &source_api::RunContext) -> Result<Session, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "open", |store| api.call_open(store, &config, context))).map(Session)
    }

    /// `session.next(max)`.
    pub async fn next(&mut self, session: &Session, max: u32) -> Result<Vec<Entry>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "listing entries", |store| api.session().call_next(store, session.0, max))
        )
    }

    /// `session.open(path)`: the content of a file.
    pub async fn open_content(&mut self, session: &Session, path: &[u8]) -> Result<Content, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "opening a file", |store| api.session().call_open(store, session.0, path))
        )
        .map(Content)
    }

    /// `content.read(max)`.
    pub async fn read(&mut self, content: &Content, max: u32) -> Result<Vec<u8>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "reading a file", |store| api.content().call_read(store, content.0, max))
        )
    }

    /// `session.finish(outcome)`.
    pub async fn finish(&mut self, session: &Session, outcome: Outcome) -> Result<(), RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "finishing the run", |store| api.session().call_finish(store, session.0, outcome))
        )
    }

    /// `open-writer(config, target)`: a writer into `target` (`restore --to URL`).
    pub async fn open_writer(&mut self, config: &str, target: &str) -> Result<Writer, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        let (config, target) = (config.to_owned(), target.to_owned());
        plugin!(
            self.inst,
            guarded!(self.inst, "opening the restore target", |store| api.call_open_writer(store, &config, &target))
        )
        .map(Writer)
    }

    /// `writer.add(entry)`.
    pub async fn writer_add(&mut self, writer: &Writer, entry: &Entry) -> Result<bool, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "restoring an entry", |store| api.writer().call_add(store, writer.0, entry))
        )
    }

    /// `writer.write(data)`.
    pub async fn writer_write(&mut self, writer: &Writer, data: &[u8]) -> Result<(), RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "restoring data", |store| api.writer().call_write(store, writer.0, data))
        )
    }

    /// `writer.end-entry()`.
    pub async fn writer_end_entry(&mut self, writer: &Writer) -> Result<(), RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "restoring an entry", |store| api.writer().call_end_entry(store, writer.0))
        )
    }

    /// `writer.finish()`: the plugin's summary.
    pub async fn writer_finish(&mut self, writer: &Writer) -> Result<String, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_source();
        plugin!(
            self.inst,
            guarded!(self.inst, "finishing the restore", |store| api.writer().call_finish(store, writer.0))
        )
    }

    /// Release a file's content.
    pub async fn close_content(&mut self, content: Content) -> Result<(), RuntimeError> {
        guarded!(self.inst, "releasing a resource", |store| content.0.resource_drop_async(store))
    }

    /// Release a session (after `finish`).
    pub async fn close_session(&mut self, session: Session) -> Result<(), RuntimeError> {
        guarded!(self.inst, "releasing a resource", |store| session.0.resource_drop_async(store))
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
    ) -> Result<Self, RuntimeError> {
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

    /// `info()`.
    pub async fn info(&mut self) -> Result<PluginInfo, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        guarded!(self.inst, "info", |store| api.call_info(store))
    }

    /// `validate(config)`.
    pub async fn validate(&mut self, config: &str) -> Result<Vec<Want>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "validate", |store| api.call_validate(store, &config)))
    }

    /// `begin-backup(config, context)`.
    pub async fn begin_backup(
        &mut self,
        config: &str,
        context: &sink_api::BackupContext,
    ) -> Result<Backup, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(
            self.inst,
            guarded!(self.inst, "starting the backup", |store| api.call_begin_backup(store, &config, context))
        )
        .map(Backup)
    }

    /// `backup.add(entry)`.
    pub async fn add(&mut self, backup: &Backup, entry: &Entry) -> Result<bool, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(
            self.inst,
            guarded!(self.inst, "storing an entry", |store| api.backup().call_add(store, backup.0, entry))
        )
    }

    /// `backup.write(data)`.
    pub async fn write(&mut self, backup: &Backup, data: &[u8]) -> Result<(), RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(self.inst, guarded!(self.inst, "storing data", |store| api.backup().call_write(store, backup.0, data)))
    }

    /// `backup.end-entry(status)`.
    pub async fn end_entry(&mut self, backup: &Backup, status: &sink_api::ContentStatus) -> Result<(), RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(
            self.inst,
            guarded!(self.inst, "storing an entry", |store| api.backup().call_end_entry(store, backup.0, status))
        )
    }

    /// `backup.finish()`.
    pub async fn finish(&mut self, backup: &Backup) -> Result<sink_api::BackupSet, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(
            self.inst,
            guarded!(self.inst, "completing the backup", |store| api.backup().call_finish(store, backup.0))
        )
    }

    /// `open-reader(config, request)`.
    pub async fn open_reader(&mut self, config: &str, request: &sink_api::ReadRequest) -> Result<Reader, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(
            self.inst,
            guarded!(self.inst, "opening the backup", |store| api.call_open_reader(store, &config, request))
        )
        .map(Reader)
    }

    /// `reader.next()`.
    pub async fn reader_next(&mut self, reader: &Reader) -> Result<Option<Entry>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(self.inst, guarded!(self.inst, "reading the backup", |store| api.reader().call_next(store, reader.0)))
    }

    /// `reader.read(max)`.
    pub async fn reader_read(&mut self, reader: &Reader, max: u32) -> Result<Vec<u8>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        plugin!(
            self.inst,
            guarded!(self.inst, "reading the backup", |store| api.reader().call_read(store, reader.0, max))
        )
    }

    /// `status(config, source)`.
    pub async fn status(&mut self, config: &str, source: &str) -> Result<sink_api::SourceStatus, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "status", |store| api.call_status(store, &config, source)))
    }

    /// `verify(config, source)`.
    pub async fn verify(&mut self, config: &str, source: &str) -> Result<sink_api::VerifyReport, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "verify", |store| api.call_verify(store, &config, source)))
    }

    /// `prune(config, source)`.
    pub async fn prune(&mut self, config: &str, source: &str) -> Result<Vec<String>, RuntimeError> {
        let api = self.bindings.orchestrator_plugin_sink();
        let config = config.to_owned();
        plugin!(self.inst, guarded!(self.inst, "applying retention", |store| api.call_prune(store, &config, source)))
    }

    /// Release a reader.
    pub async fn close_reader(&mut self, reader: Reader) -> Result<(), RuntimeError> {
        guarded!(self.inst, "releasing a resource", |store| reader.0.resource_drop_async(store))
    }
}
