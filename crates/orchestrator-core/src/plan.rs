//! A pipeline ready to run: the parsed file, the runtime, the loaded
//! plugins, the opened storages and the environment secrets come from; and
//! how an instance of each plugin starts with its final grants.
//!
//! Starting an instance is two steps: `validate` runs in an instance with no
//! grants at all, the answer is decided against the pipeline's grants, and
//! only then is the instance that works built, once, with what was granted.

use crate::env::Environment;
use crate::error::{Error, Result};
use orchestrator_config::{Pipeline, PluginInstance, PluginKind, PluginRef, SecretRef, SecretValue, Secrets, Sink};
use orchestrator_runtime::grants::{self, Granted};
use orchestrator_runtime::types::{PluginError, Want};
use orchestrator_runtime::{Grants, Limits, LoadedPlugin, Runtime, RuntimeError, SinkInstance, SourceInstance, World};
use orchestrator_storage::{DryRun, KeyRing, Place, RESERVED_PREFIX, Storage, StorageOptions};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A plugin compiled into the binary, so one file is the whole install.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name a pipeline file uses: `plugin = "directory"`.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

/// The pipeline and everything loaded for it.
pub struct Plan {
    /// The parsed pipeline file.
    pub pipeline: Pipeline,
    runtime: Runtime,
    env: Environment,
    builtins: &'static [Builtin],
    plugins: HashMap<String, Arc<LoadedPlugin>>,
    storages: HashMap<String, Arc<dyn Storage>>,
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

/// How an instance is named in logs and errors: `source "docs" (directory)`.
pub fn label(inst: &PluginInstance) -> String {
    format!("{} \"{}\" ({})", kind_word(inst), inst.name, plugin_name(&inst.plugin))
}

/// `sources` or `sinks`, the table the instance is in.
pub fn kind_table(inst: &PluginInstance) -> &'static str {
    match inst.kind {
        PluginKind::Source => "sources",
        PluginKind::Sink => "sinks",
    }
}

/// `source` or `sink`.
pub fn kind_word(inst: &PluginInstance) -> &'static str {
    match inst.kind {
        PluginKind::Source => "source",
        PluginKind::Sink => "sink",
    }
}

/// The runtime limits of an instance, from its `limits` table.
pub fn limits(inst: &PluginInstance) -> Limits {
    Limits { memory_bytes: (inst.limits.memory_mb as usize) << 20, call_timeout: inst.limits.call_timeout }
}

/// A pipeline's cache directory: `cache_dir`, or
/// `$XDG_CACHE_HOME/orchestrator/<pipeline name>`.
pub fn cache_dir(pipeline: &Pipeline, env: &Environment) -> Option<PathBuf> {
    if let Some(dir) = &pipeline.cache_dir {
        return Some(dir.clone());
    }
    Some(env.user_cache_dir()?.join(&pipeline.name))
}

/// A started runtime for commands that load plugins without a pipeline
/// (`plugin list`, `plugin inspect`).
pub fn runtime(env: &Environment) -> Result<Runtime> {
    Runtime::new(env.compiled_cache_dir()).map_err(|e| Error::Failed(e.to_string()))
}

/// Load a component from a file, for `plugin inspect`.
pub fn load_file(runtime: &Runtime, path: &Path) -> Result<LoadedPlugin> {
    let bytes = std::fs::read(path).map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    runtime.load(&bytes, &path.display().to_string()).map_err(|e| Error::Plugin(e.to_string()))
}

impl Plan {
    /// Parse the pipeline file and start the runtime. Plugins load on demand.
    pub fn load(path: &Path, env: Environment, builtins: &'static [Builtin]) -> Result<Plan> {
        let pipeline =
            orchestrator_config::load(path).map_err(|e| Error::Config(e.to_string().trim_end().to_string()))?;
        Plan::new(pipeline, env, builtins)
    }

    /// A pipeline already parsed (the daemon keeps the one it last checked
    /// and makes a plan of it for each run).
    pub fn new(pipeline: Pipeline, env: Environment, builtins: &'static [Builtin]) -> Result<Plan> {
        let runtime = Runtime::new(env.compiled_cache_dir()).map_err(|e| Error::Failed(e.to_string()))?;
        Ok(Plan { pipeline, runtime, env, builtins, plugins: HashMap::new(), storages: HashMap::new() })
    }

    /// Where secrets and the cache come from.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn load_plugin(&self, r: &PluginRef) -> std::result::Result<LoadedPlugin, String> {
        match r {
            PluginRef::Builtin(name) => {
                let builtin = self.builtins.iter().find(|b| b.name == name).ok_or_else(|| {
                    let known: Vec<_> = self.builtins.iter().map(|b| b.name).collect();
                    format!("there is no built-in plugin `{name}` (built-ins: {})", known.join(", "))
                })?;
                self.runtime.load(builtin.wasm, &format!("built-in plugin `{name}`")).map_err(|e| e.to_string())
            }
            PluginRef::File { path, sha256 } => {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read plugin {}: {e}", path.display()))?;
                let loaded = self.runtime.load(&bytes, &path.display().to_string()).map_err(|e| e.to_string())?;
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

    /// Load (once) the plugins of these instances; errors name the table.
    pub fn load_plugins<'a>(&mut self, instances: impl IntoIterator<Item = &'a PluginInstance>) -> Result<()> {
        let mut problems = Vec::new();
        for inst in instances {
            let key = plugin_key(&inst.plugin);
            if self.plugins.contains_key(&key) {
                continue;
            }
            match self.load_plugin(&inst.plugin) {
                Ok(p) => {
                    self.plugins.insert(key, Arc::new(p));
                }
                Err(e) => problems.push(format!(
                    "{}: {}.{}.plugin: {e}",
                    self.file_line(inst, "plugin"),
                    kind_table(inst),
                    inst.name
                )),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Plugin(problems.join("\n"))) }
    }

    /// The loaded plugin of an instance (after [`Plan::load_plugins`]).
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
            (first, format!("{}.{}.{message}", kind_table(inst), inst.name))
        } else {
            ("", format!("{}.{}: {message}", kind_table(inst), inst.name))
        };
        format!("{}: {shown}", self.file_line(inst, line_key))
    }

    /// Resolve an instance's secret references to values.
    pub fn resolve_secrets(&self, inst: &PluginInstance) -> Result<Secrets> {
        self.resolve(inst, &inst.secrets)
    }

    /// Resolve secret references of `inst`'s table to values.
    fn resolve(&self, inst: &PluginInstance, refs: &[SecretRef]) -> Result<Secrets> {
        let mut out = Secrets::default();
        for s in refs {
            let where_ = format!("{}: {}.{}.{}", self.file_line(inst, &s.key), kind_table(inst), inst.name, s.key);
            let value = self.env.secret(&s.source).map_err(|e| Error::Config(format!("{where_}: {e}")))?;
            out.insert(s.key.clone(), SecretValue::new(value));
        }
        Ok(out)
    }

    /// Open the storages of these sinks' targets (once each).
    pub fn open_storages<'a>(&mut self, sinks: impl IntoIterator<Item = &'a Sink>) -> Result<()> {
        let mut problems = Vec::new();
        for sink in sinks {
            let Some(target) = &sink.target else { continue };
            if self.storages.contains_key(target) {
                continue;
            }
            let options = match self.storage_options(sink) {
                Ok(o) => o,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            match orchestrator_storage::open_with(target, &options) {
                Ok(s) => {
                    self.storages.insert(target.clone(), s);
                }
                // Errors about the storage table say `storage.<key>: …`.
                Err(e) if e.to_string().starts_with("storage") => problems.push(format!(
                    "{}: sinks.{}.{e}",
                    self.file_line(&sink.instance, "storage"),
                    sink.instance.name
                )),
                Err(e) => problems.push(format!(
                    "{}: sinks.{}.target: {e}",
                    self.file_line(&sink.instance, "target"),
                    sink.instance.name
                )),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Config(problems.join("\n"))) }
    }

    /// A sink's storage table, its secrets resolved and its paths anchored
    /// at the pipeline file.
    fn storage_options(&self, sink: &Sink) -> Result<StorageOptions> {
        Ok(StorageOptions {
            values: sink.storage.clone(),
            secrets: self.resolve(&sink.instance, &sink.storage_secrets)?,
            base_dir: self.pipeline.file.parent().map(Path::to_path_buf).unwrap_or_default(),
            home: self.env.var("HOME").map(PathBuf::from),
            environment: orchestrator_storage::ENVIRONMENT
                .iter()
                .filter_map(|name| Some((name.to_string(), SecretValue::new(self.env.var(name)?.to_string()))))
                .collect(),
            upload_rate: sink.instance.limits.upload_rate,
            upload_concurrency: sink.instance.limits.upload_concurrency,
        })
    }

    /// The storage of a sink's target (after [`Plan::open_storages`]); none
    /// when the sink has no target.
    pub fn storage_of(&self, sink: &Sink) -> Option<Arc<dyn Storage>> {
        self.storages.get(sink.target.as_ref()?).cloned()
    }

    /// The pipeline's cache directory: `cache_dir`, or
    /// `$XDG_CACHE_HOME/orchestrator/<pipeline name>`.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        cache_dir(&self.pipeline, &self.env)
    }

    /// A sink's local cache (none when there is no cache directory or the
    /// sink has no target).
    fn sink_cache(&self, sink: &Sink) -> Option<Arc<dyn Storage>> {
        let target = sink.target.as_ref()?;
        let dir = orchestrator_storage::sink_cache_dir(&self.cache_dir()?, &sink.instance.name, target);
        // A cache made by an older version may be world-readable; what the
        // storage makes from now on is the user's alone.
        if let Ok(meta) = std::fs::metadata(&dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        orchestrator_storage::open(&format!("file://{}", dir.display())).ok()
    }

    /// What the plugin wants for its configuration, asked of an instance that
    /// has no grants at all (it can touch nothing while it answers).
    pub async fn wants(&self, inst: &PluginInstance) -> Result<Vec<Want>> {
        let plugin = self.plugin(inst);
        let expected = match inst.kind {
            PluginKind::Source => World::Source,
            PluginKind::Sink => World::Sink,
        };
        if plugin.world != expected {
            return Err(Error::Plugin(format!(
                "{}: {}.{}.plugin: {} is a {} plugin, not a {}",
                self.file_line(inst, "plugin"),
                kind_table(inst),
                inst.name,
                plugin.origin,
                plugin.world,
                expected
            )));
        }
        let (label, limits, config) = (label(inst), limits(inst), inst.config.to_string());
        let answer = match plugin.world {
            World::Source => match SourceInstance::new(&self.runtime, &plugin, &label, Grants::none(), &limits).await {
                Ok(mut s) => s.validate(&config).await,
                Err(e) => Err(e),
            },
            World::Sink => match SinkInstance::new(&self.runtime, &plugin, &label, Grants::none(), &limits).await {
                Ok(mut s) => s.validate(&config).await,
                Err(e) => Err(e),
            },
        };
        answer.map_err(|e| match e {
            RuntimeError::Plugin(PluginError::Config(m)) => Error::Plugin(self.config_error(inst, &m)),
            e => Error::Plugin(format!("{}: {label}: {e}", self.file_line(inst, ""))),
        })
    }

    /// Ask the plugin what it wants and decide its grants.
    pub async fn decide(&self, inst: &PluginInstance) -> Result<Granted> {
        let wants = self.wants(inst).await?;
        grants::decide(inst, &wants).map_err(|refused| {
            Error::Plugin(format!(
                "{}: {} wants more than the pipeline grants, so it does not run:\n  {}",
                self.file_line(inst, ""),
                label(inst),
                refused.join("\n  ")
            ))
        })
    }

    /// Start a source instance with its grants, and `extra_connect` on top
    /// (the server of a `restore --to URL`, which the person who typed it
    /// granted).
    pub async fn start_source(&self, inst: &PluginInstance, extra_connect: &[String]) -> Result<SourceInstance> {
        let secrets = self.resolve_secrets(inst)?;
        let mut granted = self.decide(inst).await?;
        for endpoint in extra_connect {
            if !granted.connect.contains(endpoint) {
                granted.connect.push(endpoint.clone());
            }
        }
        let grants =
            Grants { granted, secrets, storage: None, cache: None, config_values: grants::config_values(&inst.config) };
        SourceInstance::new(&self.runtime, &self.plugin(inst), &label(inst), grants, &limits(inst))
            .await
            .map_err(|e| Error::Failed(e.to_string()))
    }

    /// Start a sink instance for one source, with storage scoped to it.
    pub async fn start_sink(&self, sink: &Sink, source: &str) -> Result<SinkInstance> {
        self.start_sink_on(sink, source, self.storage_of(sink), self.sink_cache(sink)).await
    }

    /// A sink instance whose target and cache only record deletes
    /// (`prune --dry-run`): what it would remove is in the returned
    /// [`DryRun`]s' `deleted`.
    pub async fn start_sink_dry_run(&self, sink: &Sink, source: &str) -> Result<(SinkInstance, Option<Arc<DryRun>>)> {
        let storage = self.storage_of(sink).map(|s| Arc::new(DryRun::new(s)));
        let cache = self.sink_cache(sink).map(|c| Arc::new(DryRun::new(c)) as Arc<dyn Storage>);
        let target = storage.clone().map(|s| s as Arc<dyn Storage>);
        Ok((self.start_sink_on(sink, source, target, cache).await?, storage))
    }

    async fn start_sink_on(
        &self,
        sink: &Sink,
        source: &str,
        storage: Option<Arc<dyn Storage>>,
        cache: Option<Arc<dyn Storage>>,
    ) -> Result<SinkInstance> {
        let inst = &sink.instance;
        let secrets = self.resolve_secrets(inst)?;
        let granted = self.decide(inst).await?;
        // The storage seals and opens OpenPGP objects with the sink's keys; the
        // cache holds plain objects only, so it gets none.
        let base = self.pipeline.file.parent().map(PathBuf::from).unwrap_or_default();
        let mut keys = KeyRing::new(secrets.clone(), inst.config.clone(), base);
        if let Some(cache) = &cache {
            keys = keys.with_salt_store(cache.clone(), format!("{source}/{RESERVED_PREFIX}s2k-salt"));
        }
        let grants = Grants {
            granted,
            secrets,
            storage: storage.map(|s| Place::new(s, source).with_keys(Arc::new(keys))),
            cache: cache.map(|c| Place::new(c, source)),
            config_values: Vec::new(),
        };
        SinkInstance::new(&self.runtime, &self.plugin(inst), &label(inst), grants, &limits(inst))
            .await
            .map_err(|e| Error::Failed(e.to_string()))
    }

    /// The source named on the command line, or a usage error listing the names.
    pub fn source(&self, name: &str) -> Result<&PluginInstance> {
        self.pipeline.sources.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<_> = self.pipeline.sources.iter().map(|s| s.name.as_str()).collect();
            Error::Usage(format!(
                "no source `{name}` in {} (sources: {})",
                self.pipeline.file.display(),
                names.join(", ")
            ))
        })
    }

    /// The sink that backs up `source`: the one named, or the only one.
    pub fn sink_for(&self, source: &str, name: Option<&str>) -> Result<&Sink> {
        let candidates: Vec<&Sink> =
            self.pipeline.sinks.iter().filter(|s| s.inputs.iter().any(|i| i == source)).collect();
        match name {
            Some(n) => candidates.into_iter().find(|s| s.instance.name == n).ok_or_else(|| {
                Error::Usage(format!("no sink `{n}` backs up source `{source}` in {}", self.pipeline.file.display()))
            }),
            None => match candidates.as_slice() {
                [one] => Ok(one),
                [] => Err(Error::Usage(format!("no sink backs up source `{source}`"))),
                many => {
                    let names: Vec<_> = many.iter().map(|s| s.instance.name.as_str()).collect();
                    Err(Error::Usage(format!(
                        "several sinks back up `{source}`; choose one with --sink ({})",
                        names.join(", ")
                    )))
                }
            },
        }
    }

    /// Sources selected on the command line (all when none is named).
    pub fn selected_sources(&self, names: &[String]) -> Result<Vec<PluginInstance>> {
        if names.is_empty() {
            return Ok(self.pipeline.sources.clone());
        }
        names.iter().map(|n| self.source(n).cloned()).collect()
    }

    /// Every (source, sink) pair of these sources, in file order.
    pub fn pairs(&self, sources: &[PluginInstance]) -> Vec<(PluginInstance, Sink)> {
        let mut pairs = Vec::new();
        for source in sources {
            for sink in self.pipeline.sinks.iter().filter(|s| s.inputs.contains(&source.name)) {
                pairs.push((source.clone(), sink.clone()));
            }
        }
        pairs
    }
}
