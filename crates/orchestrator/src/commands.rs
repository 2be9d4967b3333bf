//! What each command does: call the core, render its report, and map the
//! outcome to an exit code (`exit`). No backup logic lives here.

use crate::builtins::BUILTINS;
use crate::cli::{Command, PluginCommand};
use crate::{exit, progress, render};
use orchestrator_core::restore::RestoreRequest;
use orchestrator_core::run::RunOptions;
use orchestrator_core::stop::{Stop, StopReason, on_signals};
use orchestrator_core::{Environment, Error, Plan, inspect, read};
use orchestrator_daemon::metrics::{self, Metrics};
use orchestrator_daemon::{DaemonOptions, run_once};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// How a command is run: by the binary (the process's environment, signals
/// stop a run, progress on a terminal) or by a test in-process.
pub struct Invocation {
    /// Where secrets, the cache directory and `PATH` come from.
    pub env: Environment,
    /// SIGINT and SIGTERM stop a run (a second one quits at once).
    pub watch_signals: bool,
    /// Show live progress of a run on stderr (a terminal).
    pub progress: bool,
}

/// Run a command; its output goes to `out`, its errors to `err`, logs to
/// the tracing subscriber. Returns the exit code.
pub async fn execute(command: Command, how: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    // Names and messages come from backups, plugins and servers: text for
    // people is filtered; JSON escapes them itself and keeps their bytes.
    let mut text;
    let out: &mut dyn Write = if json_output(&command) {
        out
    } else {
        text = render::Printable::new(out);
        &mut text
    };
    let mut err = render::Printable::new(err);
    let err: &mut dyn Write = &mut err;
    let result = dispatch(command, how, out, err).await;
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // "nothing to restore" is an answer, not a malfunction.
            let prefix = if matches!(e, Error::NothingToRestore(_)) { "" } else { "error: " };
            let _ = writeln!(err, "{prefix}{e}");
            exit::of_error(&e)
        }
    };
    let _ = out.flush();
    code
}

async fn dispatch(command: Command, how: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, Error> {
    let load = |file: &Path| Plan::load(file, how.env.clone(), BUILTINS);
    // A reader that went away (`| head`) is not a failure of the command.
    let shown = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => tracing::warn!("cannot write the output: {e}"),
        _ => {}
    };
    match command {
        Command::Run(args) => {
            let plan = load(&args.pipeline)?;
            let pipeline = args.metrics_file.as_ref().map(|_| plan.pipeline.clone());
            let stop = Stop::new();
            // Without the handlers a signal would kill the process mid-call,
            // and a source could not release what it holds.
            let signals = match how.watch_signals {
                true => Some(
                    on_signals(stop.clone(), quit_now)
                        .map_err(|e| Error::Failed(format!("cannot watch for signals: {e}")))?,
                ),
                false => None,
            };
            // Bars on a terminal, each as long as its job's last run read.
            let history = progress::load_history(how.progress, plan.cache_dir());
            let mut bars = None;
            let options = RunOptions { sources: args.sources, full: args.full };
            let (report, error) = run_once(plan, &options, &stop, |prepared| {
                bars = Some(progress::Bars::start(how.progress, &history, prepared.jobs()));
            })
            .await;
            if let Some(s) = signals {
                s.abort();
            }
            if let Some(b) = bars {
                b.finish();
            }
            if let (Some(path), Some(pipeline)) = (&args.metrics_file, &pipeline) {
                let text = Metrics::gather(pipeline, &how.env, BUILTINS)
                    .await
                    .render(report.time.max(orchestrator_core::timespec::now()));
                if let Err(e) = metrics::write_file(path, &text) {
                    let _ = writeln!(err, "warning: cannot write the metrics to {}: {e}", path.display());
                }
            }
            if let Some(e) = error {
                return Err(e);
            }
            shown(render::run(out, &report, args.json));
            Ok(exit::of_run(&report))
        }
        Command::Restore(args) => {
            let request = RestoreRequest {
                source: args.source,
                sink: args.sink,
                time: args.time,
                path: args.path,
                to: args.to.to_string_lossy().into_owned(),
                force: args.force,
                fail_fast: args.fail_fast,
            };
            let report = orchestrator_core::restore::restore(load(&args.pipeline)?, &request).await?;
            shown(render::restore(out, err, &report, args.json));
            Ok(exit::of_restore(&report))
        }
        Command::List(args) => {
            let plan = load(&args.pipeline)?;
            let (source, sink, time) = (args.source.as_str(), args.sink.as_deref(), args.time.as_deref());
            let mut failed = None;
            if args.json {
                let mut list = render::ListJson::start(out).ok();
                read::list(plan, source, sink, time, |e| {
                    if let Some(l) = list.as_mut()
                        && let Err(e) = l.entry(out, &e)
                    {
                        failed.get_or_insert(e);
                    }
                })
                .await?;
                if let Some(l) = list {
                    shown(l.end(out));
                }
            } else {
                read::list(plan, source, sink, time, |e| {
                    if failed.is_none()
                        && let Err(e) = render::list_line(out, &e)
                    {
                        failed = Some(e);
                    }
                })
                .await?;
            }
            if let Some(e) = failed {
                shown(Err(e));
            }
            Ok(exit::OK)
        }
        Command::Status(args) => {
            let max_age = match &args.max_age {
                Some(text) => {
                    Some(orchestrator_core::timespec::age(text).map_err(|e| Error::Usage(format!("--max-age: {e}")))?)
                }
                None => None,
            };
            let mut reports = read::status(load(&args.pipeline)?, &args.sources).await?;
            if let Some(age) = max_age {
                let now = orchestrator_core::timespec::now();
                reports.iter_mut().for_each(|r| r.check_age(age, now));
            }
            shown(render::status(out, err, &reports, args.json));
            let fresh = reports.iter().all(|r| r.too_old != Some(true));
            Ok(exit::of_checks(reports.iter().all(|r| r.error.is_none()) && fresh))
        }
        Command::Verify(args) => {
            let reports = read::verify(load(&args.pipeline)?, &args.sources, args.compare).await?;
            shown(render::verify(out, err, &reports, args.json));
            Ok(exit::of_checks(reports.iter().all(|r| r.ok())))
        }
        Command::Prune(args) => {
            let reports = orchestrator_core::prune::prune(load(&args.pipeline)?, &args.sources, args.dry_run).await?;
            shown(render::prune(out, err, &reports, args.json));
            Ok(exit::of_checks(reports.iter().all(|r| r.error.is_none())))
        }
        Command::RecoveryKit(args) => {
            let text = std::fs::read_to_string(&args.pipeline)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", args.pipeline.display())))?;
            let plan = load(&args.pipeline)?;
            let kit = orchestrator_core::recovery::kit(&plan.pipeline, &text, orchestrator_core::timespec::now());
            match &args.output {
                Some(path) => {
                    let mut document = Vec::new();
                    render::recovery_kit(&mut document, &kit, args.json)
                        .map_err(|e| Error::Failed(format!("cannot render the kit: {e}")))?;
                    write_private(path, &document)
                        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))?;
                    let _ = writeln!(
                        err,
                        "wrote {}: keep a copy off this machine (printed, in a password manager)",
                        path.display()
                    );
                }
                None => shown(render::recovery_kit(out, &kit, args.json)),
            }
            if let Err(e) = orchestrator_core::recovery::stamp(&plan.pipeline, plan.env(), &kit) {
                tracing::warn!("cannot note that the kit was made: {e}");
            }
            Ok(exit::OK)
        }
        Command::FetchPipeline(args) => {
            let mut storage = serde_json::Map::new();
            for setting in &args.storage {
                let (key, value) = setting
                    .split_once('=')
                    .ok_or_else(|| Error::Usage(format!("--storage {setting}: write it as KEY=VALUE")))?;
                let value = match value {
                    "true" | "false" => serde_json::Value::Bool(value == "true"),
                    _ => serde_json::Value::String(value.to_string()),
                };
                storage.insert(key.to_string(), value);
            }
            let request = orchestrator_core::stored_pipeline::Fetch {
                target: args.target,
                name: args.name,
                storage,
                secret_key: args.secret_key,
            };
            let text = orchestrator_core::stored_pipeline::fetch(&request, &how.env)?;
            match &args.output {
                Some(path) => {
                    write_private(path, text.as_bytes())
                        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))?;
                    let _ = writeln!(err, "wrote {}", path.display());
                }
                None => shown(out.write_all(text.as_bytes())),
            }
            Ok(exit::OK)
        }
        Command::Validate(args) => {
            let report = inspect::validate(load(&args.pipeline)?).await?;
            shown(render::validate(out, err, &args.pipeline, &report, args.json));
            Ok(exit::of_validate(&report))
        }
        Command::Plugin(PluginCommand::List { json }) => {
            let plugins = inspect::builtin_plugins(&how.env, BUILTINS).await?;
            shown(render::plugin_list(out, &plugins, json));
            Ok(exit::OK)
        }
        Command::Plugin(PluginCommand::Inspect { file, json }) => {
            let plugin = inspect::inspect(&how.env, &file).await?;
            shown(render::plugin_inspect(out, &plugin, json));
            Ok(exit::OK)
        }
        Command::Daemon(args) => {
            let stop = Stop::new();
            let reload = Arc::new(tokio::sync::Notify::new());
            let signals = match how.watch_signals {
                true => Some((
                    on_signals(stop.clone(), quit_now)
                        .map_err(|e| Error::Failed(format!("cannot watch for signals: {e}")))?,
                    on_hangup(reload.clone()).map_err(|e| Error::Failed(format!("cannot watch for SIGHUP: {e}")))?,
                )),
                false => None,
            };
            let options = DaemonOptions {
                file: args.pipeline,
                env: how.env.clone(),
                builtins: BUILTINS,
                metrics_file: args.metrics_file,
            };
            let summary = orchestrator_daemon::daemon(options, &stop, reload).await;
            if let Some((a, b)) = signals {
                a.abort();
                b.abort();
            }
            let summary = summary?;
            let _ = writeln!(
                err,
                "daemon stopped: {} run(s), {} failed, {} scheduled time(s) skipped",
                summary.runs, summary.failed_runs, summary.skipped
            );
            Ok(match stop.reason() {
                Some(StopReason::Signal { number, .. }) => 128u8.saturating_add(number as u8),
                _ => exit::OK,
            })
        }
    }
}

/// Whether the command prints JSON on stdout.
fn json_output(command: &Command) -> bool {
    match command {
        Command::Run(a) => a.json,
        Command::Restore(a) => a.json,
        Command::List(a) => a.json,
        Command::Status(a) => a.json,
        Command::Verify(a) => a.json,
        Command::Prune(a) => a.json,
        Command::RecoveryKit(a) => a.json,
        Command::FetchPipeline(_) => false,
        Command::Validate(a) => a.json,
        Command::Plugin(PluginCommand::List { json } | PluginCommand::Inspect { json, .. }) => *json,
        Command::Daemon(_) => false,
    }
}

/// Write `bytes` to `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// SIGHUP asks the daemon to re-read its pipeline file.
fn on_hangup(reload: Arc<tokio::sync::Notify>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reload.notify_one();
        }
    }))
}

/// The second signal: quit now, with the signal's conventional code.
fn quit_now(name: &'static str, number: i32) {
    eprintln!("error: {name} again: quitting now; sources may hold snapshots until their next run");
    std::process::exit(128 + number);
}
