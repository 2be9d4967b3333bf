//! Commands that look at plugins and the pipeline without backing up:
//! `validate`, `plugin list`, `plugin inspect`.

use super::{exit, json_out};
use crate::cli::ValidateArgs;
use crate::host::{Host, InstanceWords, UsageError, compiled_cache_dir, plugin_name};
use crate::runtime::{BUILTINS, Grants, Limits, LoadedPlugin, Runtime, SinkInstance, SourceInstance, World};

pub async fn validate(args: ValidateArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let mut instances = host.pipeline.sources.clone();
    instances.extend(host.pipeline.sinks.iter().map(|s| s.instance.clone()));
    host.load_plugins(&instances)?;
    let sinks = host.pipeline.sinks.clone();
    host.open_backends(&sinks)?;
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for inst in &instances {
        // Validation only: no grants, no storage, so nothing is touched.
        let plugin = host.plugin(inst);
        let wants = match describe(&host, inst, &plugin).await {
            Ok(w) => w,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match crate::grants::decide(inst, &wants) {
            Ok(granted) => {
                let secrets: Vec<String> = inst
                    .secrets
                    .iter()
                    .map(|s| match &s.source {
                        orchestrator_config::SecretSource::Env(v) => format!("{} from environment variable {v}", s.key),
                        orchestrator_config::SecretSource::File(p) => format!("{} from file {}", s.key, p.display()),
                    })
                    .collect();
                if let Err(e) = host.resolve_secrets(inst) {
                    problems.push(e);
                }
                if !args.json {
                    println!("{} {} ({}, {})", inst.kind_word(), inst.name, plugin_name(&inst.plugin), plugin.origin);
                    let lines = granted.lines();
                    if lines.is_empty() {
                        println!("  grants: none");
                    }
                    for l in &lines {
                        println!("  grant: {l}");
                    }
                    for s in &secrets {
                        println!("  secret: {s}");
                    }
                }
                report.push(serde_json::json!({
                    "kind": inst.kind_word(), "name": inst.name, "plugin": plugin_name(&inst.plugin),
                    "sha256": plugin.sha256, "grants": granted, "secrets": secrets,
                }));
            }
            Err(refused) => problems.push(format!(
                "{}: {} \"{}\" wants more than the pipeline grants:\n  {}",
                host.file_line(inst, ""),
                inst.kind_word(),
                inst.name,
                refused.join("\n  ")
            )),
        }
    }
    if args.json {
        json_out(&serde_json::json!({"ok": problems.is_empty(), "plugins": report, "problems": problems}));
    }
    if problems.is_empty() {
        if !args.json {
            println!("{}: ok", host.pipeline.file.display());
        }
        Ok(exit::OK)
    } else {
        Err(UsageError(problems.join("\n")))
    }
}

/// Instantiate without grants and ask what the plugin wants for its config.
async fn describe(
    host: &Host,
    inst: &orchestrator_config::PluginInstance,
    plugin: &LoadedPlugin,
) -> Result<Vec<crate::runtime::bindings::Want>, String> {
    let label = Host::label(inst);
    let config = inst.config.to_string();
    let limits = Host::limits(inst);
    let result = match plugin.world {
        World::Source => match SourceInstance::new(&host.runtime, plugin, &label, Grants::default(), &limits).await {
            Ok(mut s) => s.validate(&config).await,
            Err(e) => Err(e),
        },
        World::Sink => match SinkInstance::new(&host.runtime, plugin, &label, Grants::default(), &limits).await {
            Ok(mut s) => s.validate(&config).await,
            Err(e) => Err(e),
        },
    };
    let expected = match inst.kind {
        orchestrator_config::PluginKind::Source => World::Source,
        orchestrator_config::PluginKind::Sink => World::Sink,
    };
    if plugin.world != expected {
        return Err(format!(
            "{}: {}.{}.plugin: {} is a {} plugin, not a {}",
            host.file_line(inst, "plugin"),
            inst.kind_table(),
            inst.name,
            plugin.origin,
            plugin.world,
            expected
        ));
    }
    result.map_err(|e| match e {
        crate::runtime::CallError::Plugin(crate::runtime::bindings::PluginError::Config(m)) => {
            host.config_error(inst, &m)
        }
        e => format!("{}: {label}: {e}", host.file_line(inst, "")),
    })
}

async fn info_of(rt: &Runtime, plugin: &LoadedPlugin) -> Result<crate::runtime::bindings::PluginInfo, String> {
    let limits = Limits::default();
    match plugin.world {
        World::Source => {
            let mut s = SourceInstance::new(rt, plugin, &plugin.origin, Grants::default(), &limits)
                .await
                .map_err(|e| e.to_string())?;
            s.info().await.map_err(|e| e.to_string())
        }
        World::Sink => {
            let mut s = SinkInstance::new(rt, plugin, &plugin.origin, Grants::default(), &limits)
                .await
                .map_err(|e| e.to_string())?;
            s.info().await.map_err(|e| e.to_string())
        }
    }
}

fn runtime() -> Result<Runtime, UsageError> {
    Runtime::new(compiled_cache_dir()).map_err(|e| UsageError(format!("cannot start the WebAssembly runtime: {e:#}")))
}

pub async fn plugin_list(json: bool) -> Result<u8, UsageError> {
    let rt = runtime()?;
    let mut out = Vec::new();
    for b in BUILTINS {
        let plugin =
            rt.load(b.wasm, &format!("built-in plugin `{}`", b.name)).map_err(|e| UsageError(format!("{e:#}")))?;
        let info = info_of(&rt, &plugin).await.map_err(UsageError)?;
        if !json {
            println!("{:<16} {:<7} {:<8} {}", b.name, plugin.world.to_string(), info.version, info.description);
        }
        out.push(serde_json::json!({"name": b.name, "world": plugin.world.to_string(), "version": info.version, "description": info.description, "sha256": plugin.sha256}));
    }
    if json {
        json_out(&serde_json::Value::Array(out));
    }
    Ok(exit::OK)
}

pub async fn plugin_inspect(file: &std::path::Path, json: bool) -> Result<u8, UsageError> {
    let rt = runtime()?;
    let bytes = std::fs::read(file).map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
    let plugin = rt.load(&bytes, &file.display().to_string()).map_err(|e| UsageError(format!("{e:#}")))?;
    let info = info_of(&rt, &plugin).await.map_err(UsageError)?;
    let imports = rt.imports(&plugin.component);
    let exports = rt.exports(&plugin.component);
    if json {
        json_out(&serde_json::json!({
            "file": file.display().to_string(), "name": info.name, "version": info.version,
            "description": info.description, "world": plugin.world.to_string(),
            "api": "orchestrator:plugin@0.1", "sha256": plugin.sha256, "size": plugin.size,
            "imports": imports, "exports": exports,
        }));
    } else {
        println!("{}: {} {} — {}", file.display(), info.name, info.version, info.description);
        println!("  world:   {} (orchestrator:plugin@0.1)", plugin.world);
        println!("  sha256:  {}", plugin.sha256);
        println!("  size:    {} bytes", plugin.size);
        println!("  imports: {}", imports.join(", "));
        println!("  exports: {}", exports.join(", "));
        println!("  what it wants depends on its configuration: `orchestrator validate PIPELINE` prints the grants");
    }
    Ok(exit::OK)
}
