//! One invocation's view of a pipeline: the parsed file, the runtime, the
//! loaded plugins, and how to start an instance of each with its grants.

use crate::capabilities::secrets::{SecretValue, SecretsCtx};
use crate::capabilities::storage::{Backend, KeyRing, StorageCtx};
use crate::grants::{self, Granted};
use crate::runtime::bindings::PluginError;
use crate::runtime::{self, CallError, Grants, Limits, LoadedPlugin, Runtime, SinkInstance, SourceInstance};
use orchestrator_config::{Pipeline, PluginInstance, PluginRef, SecretSource, Sink};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// A failure that is the user's to fix in the pipeline file or the command
/// line (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The pipeline and everything loaded for it.
pub struct Host {
    /// The parsed pipeline file.
    pub pipeline: Pipeline,
    /// The WebAssembly runtime.
    pub runtime: Runtime,
    plugins: HashMap<String, Arc<LoadedPlugin>>,
    backends: HashMap<String, Arc<Backend>>,
}

/// `$XDG_CACHE_HOME/orchestrator` (or `~/.cache/orchestrator`).
fn user_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("orchestrator"))
}

/// Where compiled plugins are cached, shared by every pipeline.
pub fn compiled_cache_dir() -> Option<PathBuf> {
    Some(user_cache_dir()?.join("compiled"))
}

fn plugin_key(r: &PluginRef) -> String {
    match r {
        PluginRef::Builtin(name) => format!("builtin:{name}"),
        PluginRef::File { path, .. } => format!("file:{}", path.display()),
    }
}

/// A plugin's short name for labels: the built-in name or the file's stem.
pub fn plugin_name(r: &PluginRef) -> String {
    match r {
        PluginRef::Builtin(name) => name.clone(),
        PluginRef::File { path, .. } => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// Load a plugin's component: a built-in by name or a file, checking its pin.
pub fn load_plugin(rt: &Runtime, r: &PluginRef) -> Result<LoadedPlugin, String> {
    match r {
        PluginRef::Builtin(name) => {
            let builtin = runtime::builtin::find(name).ok_or_else(|| {
                let known: Vec<_> = runtime::BUILTINS.iter().map(|b| b.name).collect();
                format!("there is no built-in plugin `{name}` (built-ins: {})", known.join(", "))
            })?;
            rt.load(builtin.wasm, &format!("built-in plugin `{name}`")).map_err(|e| format!("{e:#}"))
        }
        PluginRef::File { path, sha256 } => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read plugin {}: {e}", path.display()))?;
            let loaded = rt.load(&bytes, &path.display().to_string()).map_err(|e| format!("{e:#}"))?;
            if let Some(pin) = sha256
                && !pin.eq_ignore_ascii_case(&loaded.sha256)
            {
                return Err(format!(
                    "plugin {} has sha256 {}, but the pipeline pins {pin}; if you updated the plugin on \
                     purpose, update the pin",
                    path.display(),
                    loaded.sha256
                ));
            }
            Ok(loaded)
        }
    }
}

impl Host {
    /// Parse the pipeline file and start the runtime. Plugins load on demand.
    pub fn new(path: &std::path::Path) -> Result<Host, UsageError> {
        let pipeline = orchestrator_config::load(path).map_err(|e| UsageError(e.to_string().trim_end().to_string()))?;
        let runtime = Runtime::new(compiled_cache_dir())
            .map_err(|e| UsageError(format!("cannot start the WebAssembly runtime: {e:#}")))?;
        Ok(Host { pipeline, runtime, plugins: HashMap::new(), backends: HashMap::new() })
    }

    /// Load (once) the plugins of these instances; errors name the table.
    pub fn load_plugins<'a>(
        &mut self,
        instances: impl IntoIterator<Item = &'a PluginInstance>,
    ) -> Result<(), UsageError> {
        let mut problems = Vec::new();
        for inst in instances {
            let key = plugin_key(&inst.plugin);
            if self.plugins.contains_key(&key) {
                continue;
            }
            match load_plugin(&self.runtime, &inst.plugin) {
                Ok(p) => {
                    self.plugins.insert(key, Arc::new(p));
                }
                Err(e) => problems.push(format!(
                    "{}: {}.{}.plugin: {e}",
                    self.file_line(inst, "plugin"),
                    inst.kind_table(),
                    inst.name
                )),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(UsageError(problems.join("\n"))) }
    }

    /// The loaded plugin of an instance (after [`Host::load_plugins`]).
    pub fn plugin(&self, inst: &PluginInstance) -> Arc<LoadedPlugin> {
        self.plugins[&plugin_key(&inst.plugin)].clone()
    }

    /// `file:line` of a key of an instance's table.
    pub fn file_line(&self, inst: &PluginInstance, key: &str) -> String {
        format!("{}:{}", self.pipeline.file.display(), inst.line_of(key))
    }

    /// A plugin's `config` error, pointed at the line of the key it names.
    pub fn config_error(&self, inst: &PluginInstance, message: &str) -> String {
        let key = message.split_once(": ").map(|(k, _)| k).filter(|k| !k.contains(' ')).unwrap_or("");
        let first = key.split(['.', '[']).next().unwrap_or("");
        let (line_key, shown) = if !first.is_empty() && inst.key_lines.contains_key(first) {
            (first, format!("{}.{}.{message}", inst.kind_table(), inst.name))
        } else {
            ("", format!("{}.{}: {message}", inst.kind_table(), inst.name))
        };
        format!("{}: {shown}", self.file_line(inst, line_key))
    }

    /// Resolve an instance's secret references to values.
    pub fn resolve_secrets(&self, inst: &PluginInstance) -> Result<BTreeMap<String, SecretValue>, String> {
        let mut out = BTreeMap::new();
        for s in &inst.secrets {
            let where_ = format!("{}: {}.{}.{}", self.file_line(inst, &s.key), inst.kind_table(), inst.name, s.key);
            let value = match &s.source {
                SecretSource::Env(var) => {
                    std::env::var(var).map_err(|_| format!("{where_}: environment variable {var} is not set"))?
                }
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| format!("{where_}: cannot read secret file {}: {e}", path.display()))?,
            };
            out.insert(s.key.clone(), SecretValue::new(value));
        }
        Ok(out)
    }

    /// How an instance is named in logs and errors: `source "docs" (directory)`.
    pub fn label(inst: &PluginInstance) -> String {
        format!("{} \"{}\" ({})", inst.kind_word(), inst.name, plugin_name(&inst.plugin))
    }

    /// The runtime limits of an instance, from its `limits` table.
    pub fn limits(inst: &PluginInstance) -> Limits {
        Limits { memory_bytes: (inst.limits.memory_mb as usize) << 20, call_timeout: inst.limits.call_timeout }
    }

    /// Ask the plugin what it wants for its configuration and decide the grants.
    fn plan(
        &self,
        inst: &PluginInstance,
        validate: Result<Vec<runtime::bindings::Want>, CallError>,
    ) -> Result<Granted, String> {
        let wants = match validate {
            Ok(w) => w,
            Err(CallError::Plugin(PluginError::Config(m))) => return Err(self.config_error(inst, &m)),
            Err(e) => return Err(e.to_string()),
        };
        grants::decide(inst, &wants).map_err(|refused| {
            format!(
                "{}: {} wants more than the pipeline grants, so it does not run:\n  {}",
                self.file_line(inst, ""),
                Self::label(inst),
                refused.join("\n  ")
            )
        })
    }

    /// Start a source instance with its grants.
    pub async fn start_source(&self, inst: &PluginInstance) -> Result<(SourceInstance, Granted), String> {
        let secrets = self.resolve_secrets(inst)?;
        let grants = Grants {
            secrets: SecretsCtx::new(secrets, Default::default()),
            config_values: grants::config_values(&inst.config),
            ..Default::default()
        };
        let mut src =
            SourceInstance::new(&self.runtime, &self.plugin(inst), &Self::label(inst), grants, &Self::limits(inst))
                .await
                .map_err(|e| e.to_string())?;
        let config = inst.config.to_string();
        let validated = src.validate(&config).await;
        let granted = self.plan(inst, validated)?;
        src.grant(&granted).map_err(|e| e.to_string())?;
        Ok((src, granted))
    }

    /// Open the storage backends of these sinks' targets (once each).
    pub fn open_backends<'a>(&mut self, sinks: impl IntoIterator<Item = &'a Sink>) -> Result<(), UsageError> {
        let mut problems = Vec::new();
        for sink in sinks {
            let Some(target) = &sink.target else { continue };
            if self.backends.contains_key(target) {
                continue;
            }
            match Backend::from_url(target) {
                Ok(b) => {
                    self.backends.insert(target.clone(), Arc::new(b));
                }
                Err(e) => problems.push(format!(
                    "{}: sinks.{}.target: {e}",
                    self.file_line(&sink.instance, "target"),
                    sink.instance.name
                )),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(UsageError(problems.join("\n"))) }
    }

    /// The storage backend of a sink's target (after [`Host::open_backends`]).
    pub fn backend_of(&self, sink: &Sink) -> Result<Option<Arc<Backend>>, String> {
        match &sink.target {
            None => Ok(None),
            Some(t) => self.backends.get(t).cloned().map(Some).ok_or_else(|| format!("target {t} was not opened")),
        }
    }

    /// The pipeline's cache directory: `cache_dir`, or
    /// `$XDG_CACHE_HOME/orchestrator/<pipeline name>`.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.pipeline.cache_dir {
            return Some(dir.clone());
        }
        Some(user_cache_dir()?.join(&self.pipeline.name))
    }

    /// A sink's local cache (none when there is no cache directory or the sink
    /// has no target).
    fn sink_cache(&self, sink: &Sink) -> Option<Backend> {
        let target = sink.target.as_ref()?;
        let dir = crate::capabilities::cache::sink_cache_dir(&self.cache_dir()?, &sink.instance.name, target);
        Backend::from_url(&format!("file://{}", dir.display())).ok()
    }

    /// Start a sink instance for one source, with storage scoped to it.
    pub async fn start_sink(
        &self,
        sink: &Sink,
        backend: Option<Arc<Backend>>,
        source: &str,
    ) -> Result<(SinkInstance, Granted), String> {
        let inst = &sink.instance;
        let secrets = SecretsCtx::new(self.resolve_secrets(inst)?, Default::default());
        // The storage seals and opens OpenPGP objects with the sink's keys; the
        // cache holds plain objects only, so it gets none.
        let base = self.pipeline.file.parent().map(PathBuf::from).unwrap_or_default();
        let cache_backend = self.sink_cache(sink).map(Arc::new);
        let mut keys = KeyRing::new(secrets.clone(), inst.config.clone(), base);
        if let Some(cache) = &cache_backend {
            keys = keys.with_salt_store(
                cache.clone(),
                format!("{source}/{}s2k-salt", crate::capabilities::storage::RESERVED_PREFIX),
            );
        }
        let storage = backend.map(|b| StorageCtx::new(b, source).with_keys(Arc::new(keys)));
        let cache = cache_backend.map(|b| StorageCtx::new(b, source));
        let grants = Grants { read_paths: Vec::new(), secrets, storage, cache, config_values: Vec::new() };
        let mut snk =
            SinkInstance::new(&self.runtime, &self.plugin(inst), &Self::label(inst), grants, &Self::limits(inst))
                .await
                .map_err(|e| e.to_string())?;
        let config = inst.config.to_string();
        let validated = snk.validate(&config).await;
        let granted = self.plan(inst, validated)?;
        snk.grant(&granted).map_err(|e| e.to_string())?;
        Ok((snk, granted))
    }
}

/// Words for instance kinds.
pub trait InstanceWords {
    /// `sources` or `sinks`, the table the instance is in.
    fn kind_table(&self) -> &'static str;
    /// `source` or `sink`.
    fn kind_word(&self) -> &'static str;
}

impl InstanceWords for PluginInstance {
    fn kind_table(&self) -> &'static str {
        match self.kind {
            orchestrator_config::PluginKind::Source => "sources",
            orchestrator_config::PluginKind::Sink => "sinks",
        }
    }
    fn kind_word(&self) -> &'static str {
        match self.kind {
            orchestrator_config::PluginKind::Source => "source",
            orchestrator_config::PluginKind::Sink => "sink",
        }
    }
}
