//! What each command does. Every command returns its exit code: 0 success,
//! 1 some source failed, 2 bad usage or configuration, 3 nothing to restore.

mod inspect;
mod read;
mod run;

use crate::cli::{Command, PluginCommand};
use crate::host::{Host, UsageError};
use orchestrator_config::Sink;

/// Exit codes of the brief.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// At least one source failed.
    pub const FAILED: u8 = 1;
    /// Bad usage or configuration.
    pub const USAGE: u8 = 2;
    /// Nothing to restore.
    pub const NOTHING: u8 = 3;
}

/// Set up tracing to stderr.
pub fn init_logging(filter: &str, json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Run a command.
pub async fn dispatch(command: Command) -> u8 {
    let result = match command {
        Command::Run(args) => run::run(args).await,
        Command::Restore(args) => read::restore(args).await,
        Command::List(args) => read::list(args).await,
        Command::Status(args) => read::status(args).await,
        Command::Verify(args) => read::verify(args).await,
        Command::Validate(args) => inspect::validate(args).await,
        Command::Plugin(PluginCommand::List { json }) => inspect::plugin_list(json).await,
        Command::Plugin(PluginCommand::Inspect { file, json }) => inspect::plugin_inspect(&file, json).await,
        Command::Daemon(_) => Err(UsageError(
            "`daemon` is not yet supported; run `orchestrator run PIPELINE` from cron, a systemd timer or a \
             Kubernetes CronJob"
                .into(),
        )),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// The source named on the command line, or a usage error listing the names.
fn find_source<'a>(host: &'a Host, name: &str) -> Result<&'a orchestrator_config::PluginInstance, UsageError> {
    host.pipeline.sources.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<_> = host.pipeline.sources.iter().map(|s| s.name.as_str()).collect();
        UsageError(format!("no source `{name}` in {} (sources: {})", host.pipeline.file.display(), names.join(", ")))
    })
}

/// The sink that backs up `source`: the one named, or the only one.
fn find_sink<'a>(host: &'a Host, source: &str, name: Option<&str>) -> Result<&'a Sink, UsageError> {
    let candidates: Vec<&Sink> = host.pipeline.sinks.iter().filter(|s| s.inputs.iter().any(|i| i == source)).collect();
    match name {
        Some(n) => candidates.into_iter().find(|s| s.instance.name == n).ok_or_else(|| {
            UsageError(format!("no sink `{n}` backs up source `{source}` in {}", host.pipeline.file.display()))
        }),
        None => match candidates.as_slice() {
            [one] => Ok(one),
            [] => Err(UsageError(format!("no sink backs up source `{source}`"))),
            many => {
                let names: Vec<_> = many.iter().map(|s| s.instance.name.as_str()).collect();
                Err(UsageError(format!(
                    "several sinks back up `{source}`; choose one with --sink ({})",
                    names.join(", ")
                )))
            }
        },
    }
}

/// Sources selected on the command line (all when none is named).
fn selected_sources(host: &Host, names: &[String]) -> Result<Vec<orchestrator_config::PluginInstance>, UsageError> {
    if names.is_empty() {
        return Ok(host.pipeline.sources.clone());
    }
    names.iter().map(|n| find_source(host, n).cloned()).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn json_out(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Bytes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
