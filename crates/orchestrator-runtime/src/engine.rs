//! The engine, the linkers, and loading components (with an on-disk cache of
//! compiled code).
//!
//! wasmtime 48 with trimmed features: one `Engine` (epoch interruption, a plain
//! thread ticking every 10 ms), one `Linker` per world, compiled components
//! cached on disk (`$XDG_CACHE_HOME/orchestrator/compiled`, keyed by the
//! component's sha256 and the engine's compatibility hash), and a fresh `Store`
//! per plugin instance with a memory limiter. `instance.rs` wraps every call in
//! the per-call time limit and turns traps into sentences; after a trap or
//! timeout the instance is marked broken and never entered again.

use super::bindings::{sink::SinkPluginPre, source::SourcePluginPre};
use super::state::PluginState;
use super::{bindings, instance::RuntimeError};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// How often the epoch advances; a running plugin yields to the executor this
/// often, so a spinning plugin never blocks other jobs or its own timeout.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `orchestrator:plugin/source-plugin`
    Source,
    /// `orchestrator:plugin/sink-plugin`
    Sink,
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            World::Source => "source",
            World::Sink => "sink",
        })
    }
}

/// A compiled, type-checked plugin, ready to instantiate any number of times.
pub struct LoadedPlugin {
    /// Where it came from: `built-in directory` or a file path.
    pub origin: String,
    /// SHA-256 of the component, lowercase hex.
    pub sha256: String,
    /// The world it implements.
    pub world: World,
    /// Size of the component in bytes.
    pub size: usize,
    pub(crate) component: Component,
    pub(crate) source: Option<SourcePluginPre<PluginState>>,
    pub(crate) sink: Option<SinkPluginPre<PluginState>>,
}

/// The process-wide WebAssembly runtime.
pub struct Runtime {
    pub(crate) engine: Engine,
    source_linker: Linker<PluginState>,
    sink_linker: Linker<PluginState>,
    compiled_cache: Option<PathBuf>,
}

impl Runtime {
    /// A runtime caching compiled components under `compiled_cache` (none: compile
    /// every time).
    pub fn new(compiled_cache: Option<PathBuf>) -> Result<Runtime, RuntimeError> {
        Self::start(compiled_cache)
            .map_err(|e| RuntimeError::Load(format!("cannot start the WebAssembly runtime: {e:#}")))
    }

    fn start(compiled_cache: Option<PathBuf>) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let ticker = engine.weak();
        std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;

        let mut source_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut source_linker)?;
        bindings::source::SourcePlugin::add_to_linker::<_, HasSelf<PluginState>>(&mut source_linker, |s| s)?;
        let mut sink_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut sink_linker)?;
        bindings::sink::SinkPlugin::add_to_linker::<_, HasSelf<PluginState>>(&mut sink_linker, |s| s)?;
        Ok(Runtime { engine, source_linker, sink_linker, compiled_cache })
    }

    /// Compile (or load from the cache) and type-check a component.
    pub fn load(&self, bytes: &[u8], origin: &str) -> Result<LoadedPlugin, RuntimeError> {
        self.load_component(bytes, origin).map_err(|e| RuntimeError::Load(format!("{e:#}")))
    }

    fn load_component(&self, bytes: &[u8], origin: &str) -> anyhow::Result<LoadedPlugin> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let component = self
            .compile_cached(bytes, &sha256)
            .map_err(|e| anyhow::anyhow!("{origin} is not a usable WebAssembly component: {e:#}"))?;

        let source = self.source_linker.instantiate_pre(&component).and_then(SourcePluginPre::new).ok();
        let sink = if source.is_none() {
            self.sink_linker.instantiate_pre(&component).and_then(SinkPluginPre::new).ok()
        } else {
            None
        };
        let world = match (&source, &sink) {
            (Some(_), _) => World::Source,
            (None, Some(_)) => World::Sink,
            (None, None) => anyhow::bail!(
                "{origin} implements neither orchestrator:plugin/source-plugin@0.1 nor sink-plugin@0.1\n\
                 it exports: {}\nit imports: {}",
                self.exports(&component).join(", "),
                self.imports(&component).join(", ")
            ),
        };
        Ok(LoadedPlugin { origin: origin.to_string(), sha256, world, size: bytes.len(), component, source, sink })
    }

    /// The names of a plugin's imports.
    pub fn imports_of(&self, plugin: &LoadedPlugin) -> Vec<String> {
        self.imports(&plugin.component)
    }

    /// The names of a plugin's exports.
    pub fn exports_of(&self, plugin: &LoadedPlugin) -> Vec<String> {
        self.exports(&plugin.component)
    }

    fn imports(&self, component: &Component) -> Vec<String> {
        component.component_type().imports(&self.engine).map(|(n, _)| n.to_string()).collect()
    }

    fn exports(&self, component: &Component) -> Vec<String> {
        component.component_type().exports(&self.engine).map(|(n, _)| n.to_string()).collect()
    }

    fn compile_cached(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.compiled_cache else {
            return Component::new(&self.engine, bytes);
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        // The file's layout: compiled code, then its SHA-256.
        "with-sha256".hash(&mut h);
        let path = dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
        if let Ok(cached) = std::fs::read(&path) {
            match deserialize_checked(&self.engine, &cached) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!("recompiling: the compiled plugin {} is unusable: {e}", path.display()),
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        if let Err(e) = store_atomically(dir, &path, &with_checksum(&compiled)) {
            tracing::debug!("cannot cache compiled plugin in {}: {e}", dir.display());
        }
        deserialize_checked(&self.engine, &with_checksum(&compiled))
    }

    pub(crate) fn check_world(plugin: &LoadedPlugin, want: World) -> Result<(), RuntimeError> {
        if plugin.world == want {
            Ok(())
        } else {
            Err(RuntimeError::Setup(format!(
                "{} is a {} plugin, but it is used as a {want}",
                plugin.origin, plugin.world
            )))
        }
    }
}

/// Compiled code and, after it, the SHA-256 of that code: machine code is
/// run as it is read, so a file torn by a power cut or flipped on disk must
/// be told from a good one before it is loaded.
fn with_checksum(compiled: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compiled.len() + 32);
    out.extend_from_slice(compiled);
    out.extend_from_slice(&Sha256::digest(compiled));
    out
}

/// Load compiled code written by [`with_checksum`], after checking it.
#[allow(unsafe_code)]
fn deserialize_checked(engine: &Engine, stored: &[u8]) -> wasmtime::Result<Component> {
    let Some(split) = stored.len().checked_sub(32) else { wasmtime::bail!("the file is too short") };
    let (compiled, checksum) = stored.split_at(split);
    if Sha256::digest(compiled)[..] != *checksum {
        wasmtime::bail!("its checksum does not match (a torn or damaged file)");
    }
    // SAFETY: the bytes are what `Engine::precompile_component` of an engine
    // with the same compatibility hash (it is in the name) wrote into a cache
    // directory only the host writes, checked whole against the SHA-256
    // written with them; files supplied by users are never loaded this way,
    // only compiled from their wasm bytes.
    unsafe { Component::deserialize(engine, compiled) }
}

fn store_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand_suffix()));
    let written = std::fs::File::create_new(&temp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    written.and_then(|()| std::fs::rename(&temp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
