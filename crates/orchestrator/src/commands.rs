//! What each command does: call the core, render its report, and map the
//! outcome to an exit code (`exit`). No backup logic lives here.

use crate::builtins::BUILTINS;
use crate::cli::{Command, PluginCommand};
use crate::{exit, render};
use orchestrator_core::restore::RestoreRequest;
use orchestrator_core::run::RunOptions;
use orchestrator_core::stop::{Stop, on_signals};
use orchestrator_core::{Environment, Error, Plan, inspect, read};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
            let prepared = orchestrator_core::run::prepare(
                load(&args.pipeline)?,
                &RunOptions { sources: args.sources, full: args.full },
            )?;
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
            let ticker = how.progress.then(|| {
                let jobs = prepared.jobs().iter().map(|j| (j.name.clone(), j.progress.clone())).collect();
                tokio::spawn(show_progress(jobs))
            });
            let report = prepared.run(&stop).await;
            if let Some(s) = signals {
                s.abort();
            }
            if let Some(t) = ticker {
                t.abort();
                // The ticker's own line on the terminal, cleared.
                eprint!("\r\x1b[K");
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
            let reports = read::status(load(&args.pipeline)?, &args.sources).await?;
            shown(render::status(out, err, &reports, args.json));
            Ok(exit::of_checks(reports.iter().all(|r| r.error.is_none())))
        }
        Command::Verify(args) => {
            let reports = read::verify(load(&args.pipeline)?, &args.sources, args.compare).await?;
            shown(render::verify(out, err, &reports, args.json));
            Ok(exit::of_checks(reports.iter().all(|r| r.ok())))
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
        Command::Daemon(_) => Err(Error::Usage(
            "`daemon` is not yet supported; run `orchestrator run PIPELINE` from cron, a systemd timer or a \
             Kubernetes CronJob"
                .into(),
        )),
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
        Command::Validate(a) => a.json,
        Command::Plugin(PluginCommand::List { json } | PluginCommand::Inspect { json, .. }) => *json,
        Command::Daemon(_) => false,
    }
}

/// The second signal: quit now, with the signal's conventional code.
fn quit_now(name: &'static str, number: i32) {
    eprintln!("error: {name} again: quitting now; sources may hold snapshots until their next run");
    std::process::exit(128 + number);
}

async fn show_progress(jobs: Vec<(String, Arc<orchestrator_core::job::Progress>)>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        let line: Vec<String> = jobs
            .iter()
            .map(|(name, p)| {
                format!(
                    "{name}: {} entries, {}",
                    p.entries.load(Ordering::Relaxed),
                    render::human_bytes(p.bytes.load(Ordering::Relaxed))
                )
            })
            .collect();
        eprint!("\r\x1b[K{}", line.join(" | "));
    }
}
