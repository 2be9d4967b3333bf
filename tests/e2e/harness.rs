//! Shared harness: a unique temp dir per test, pipeline files, and the binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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

    /// Run the binary with `args`, a shared cache of compiled plugins, and
    /// `envs` on top of a clean environment.
    pub fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        Run::from(self.command(args, envs).output().unwrap())
    }

    /// [`Env::run`], started in the background with its output piped.
    pub fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args, envs);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache"))
            .env("ORCHESTRATOR_LOG", "info")
            .env("NO_COLOR", "1");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }
}
