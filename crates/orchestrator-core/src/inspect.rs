//! Looking at a pipeline and at plugins without backing up: `validate`,
//! `plugin list`, `plugin inspect`.

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::{Builtin, Plan, kind_word, plugin_name};
use orchestrator_config::SecretSource;
use orchestrator_runtime::types::PluginInfo;
use orchestrator_runtime::{Granted, Grants, Limits, LoadedPlugin, Runtime, SinkInstance, SourceInstance, World};
use serde::Serialize;
use std::path::Path;

/// What `validate` found for one plugin instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    /// `source` or `sink`.
    pub kind: &'static str,
    /// Its table's name.
    pub name: String,
    /// The plugin's short name.
    pub plugin: String,
    /// Where the plugin came from (`built-in plugin \`directory\``, a path).
    #[serde(skip)]
    pub origin: String,
    /// The component's SHA-256.
    pub sha256: String,
    /// What it is granted.
    pub grants: Granted,
    /// Its secrets, by where they come from (never their values).
    pub secrets: Vec<String>,
}

/// What `validate` found.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// No problem at all.
    pub ok: bool,
    /// Each instance that could be checked.
    pub plugins: Vec<InstanceReport>,
    /// Every problem, each naming the file and line.
    pub problems: Vec<String>,
}

/// Load every plugin, ask each (in an instance without grants) what it
/// wants, decide the grants and resolve the secrets; touch no target.
pub async fn validate(mut plan: Plan) -> Result<ValidateReport> {
    let mut instances = plan.pipeline.sources.clone();
    instances.extend(plan.pipeline.sinks.iter().map(|s| s.instance.clone()));
    plan.load_plugins(&instances)?;
    let sinks = plan.pipeline.sinks.clone();
    plan.open_storages(&sinks)?;
    let mut report = ValidateReport { ok: true, plugins: Vec::new(), problems: Vec::new() };
    for inst in &instances {
        let granted = match plan.decide(inst).await {
            Ok(g) => g,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        if let Err(e) = plan.resolve_secrets(inst) {
            report.problems.push(e.to_string());
        }
        let plugin = plan.plugin(inst);
        report.plugins.push(InstanceReport {
            kind: kind_word(inst),
            name: inst.name.clone(),
            plugin: plugin_name(&inst.plugin),
            origin: plugin.origin.clone(),
            sha256: plugin.sha256.clone(),
            grants: granted,
            secrets: inst
                .secrets
                .iter()
                .map(|s| match &s.source {
                    SecretSource::Env(v) => format!("{} from environment variable {v}", s.key),
                    SecretSource::File(p) => format!("{} from file {}", s.key, p.display()),
                })
                .collect(),
        });
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// What a component says it is.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    /// The built-in's name or the file.
    pub name: String,
    /// Source or sink.
    pub world: String,
    /// `info()`.
    #[serde(skip)]
    pub info: PluginInfo,
    /// The component's SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: usize,
    /// What it imports.
    pub imports: Vec<String>,
    /// What it exports.
    pub exports: Vec<String>,
}

async fn describe(rt: &Runtime, name: String, plugin: &LoadedPlugin) -> Result<PluginReport> {
    let limits = Limits::default();
    let info = match plugin.world {
        World::Source => match SourceInstance::new(rt, plugin, &plugin.origin, Grants::none(), &limits).await {
            Ok(mut s) => s.info().await,
            Err(e) => Err(e),
        },
        World::Sink => match SinkInstance::new(rt, plugin, &plugin.origin, Grants::none(), &limits).await {
            Ok(mut s) => s.info().await,
            Err(e) => Err(e),
        },
    }
    .map_err(|e| Error::Plugin(e.to_string()))?;
    Ok(PluginReport {
        name,
        world: plugin.world.to_string(),
        info,
        sha256: plugin.sha256.clone(),
        size: plugin.size,
        imports: rt.imports_of(plugin),
        exports: rt.exports_of(plugin),
    })
}

/// Every built-in plugin.
pub async fn builtin_plugins(env: &Environment, builtins: &[Builtin]) -> Result<Vec<PluginReport>> {
    let rt = crate::plan::runtime(env)?;
    let mut out = Vec::new();
    for b in builtins {
        let plugin =
            rt.load(b.wasm, &format!("built-in plugin `{}`", b.name)).map_err(|e| Error::Plugin(e.to_string()))?;
        out.push(describe(&rt, b.name.to_string(), &plugin).await?);
    }
    Ok(out)
}

/// A component file.
pub async fn inspect(env: &Environment, file: &Path) -> Result<PluginReport> {
    let rt = crate::plan::runtime(env)?;
    let plugin = crate::plan::load_file(&rt, file)?;
    describe(&rt, file.display().to_string(), &plugin).await
}
