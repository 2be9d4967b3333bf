//! Shared harness: a unique temp dir per test, pipeline files, and the
//! commands: run in-process through the same `execute` the binary calls
//! (each with its own environment, runtime and captured logs), or by the
//! binary itself where the process is the point (signals, `kill -9`,
//! argument parsing and exit codes).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_orchestrator")
}

/// A compiled test plugin.
pub fn plugin(name: &str) -> PathBuf {
    PathBuf::from(env!("ORCHESTRATOR_WASM_DIR")).join(format!("{name}.wasm"))
}

/// A test's own directory, removed when it passes.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// What a run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a spawned run printed and returned, once it ends.
    pub fn wait(child: Child) -> Run {
        Run::from(child.wait_with_output().unwrap())
    }

    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::Builder::new().prefix("e2e-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a pipeline file; `{dir}` stands for the test's directory and
    /// `{fixture_sink}`/`{misbehaving}` for the test plugins.
    pub fn pipeline(&self, name: &str, text: &str) -> PathBuf {
        let text = text
            .replace("{dir}", &self.dir.path().display().to_string())
            .replace("{fixture_sink}", &plugin("fixture_sink").display().to_string())
            .replace("{misbehaving}", &plugin("misbehaving_plugin").display().to_string());
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Run the command `args` in this process, as the binary would with a
    /// shared cache of compiled plugins and `envs` on top of a clean
    /// environment: stdout, stderr and the logs are captured.
    pub fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        use clap::Parser;
        let argv = std::iter::once("orchestrator").chain(args.iter().copied());
        let cli = match orchestrator::cli::Cli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(e) => {
                let text = e.render().to_string();
                let (stdout, stderr) = if e.use_stderr() { (String::new(), text) } else { (text, String::new()) };
                return Run { code: e.exit_code(), stdout, stderr };
            }
        };
        let mut pairs = self.base_env();
        pairs.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let explicit_log = args.iter().any(|a| *a == "--log" || a.starts_with("--log="));
        let log = match pairs.iter().rev().find(|(k, _)| k == "ORCHESTRATOR_LOG") {
            Some((_, v)) if !explicit_log => v.clone(),
            _ => cli.log.clone(),
        };
        let logs = Captured::default();
        let dispatch = orchestrator::logging::subscriber(&log, cli.log_json, false, logs.clone());
        let on_thread = dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            // Each thread of this command's runtime logs into its capture;
            // the threads end with the runtime.
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_thread)))
            .build()
            .unwrap();
        let how = orchestrator::commands::Invocation {
            env: orchestrator_core::Environment::from_pairs(pairs),
            watch_signals: false,
            progress: false,
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = tracing::dispatcher::with_default(&dispatch, || {
            runtime.block_on(orchestrator::commands::execute(cli.command, &how, &mut stdout, &mut stderr))
        });
        drop(runtime);
        let mut all_stderr = logs.take();
        all_stderr.extend_from_slice(&stderr);
        Run {
            code: i32::from(code),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&all_stderr).into_owned(),
        }
    }

    /// Run the binary with `args`, a shared cache of compiled plugins, and
    /// `envs` on top of a clean environment.
    pub fn run_binary(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        Run::from(self.command(args, envs).output().unwrap())
    }

    /// [`Env::run`], started in the background with its output piped.
    pub fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args, envs);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    /// The clean environment every command starts from.
    fn base_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            (
                "XDG_CACHE_HOME".into(),
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache").display().to_string(),
            ),
            ("ORCHESTRATOR_LOG".into(), "info".into()),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args).env_clear();
        for (k, v) in self.base_env() {
            cmd.env(k, v);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Logs written by one in-process command.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}
