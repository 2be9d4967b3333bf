//! Log lines, progress and stderr of plugins, routed to the host's tracing
//! output tagged with the plugin's label, with secrets redacted.

use crate::bindings::source::orchestrator::plugin::{log, progress};
use crate::state::PluginState;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Longest log line kept from a plugin; longer ones are cut, so a plugin cannot
/// flood the host's log with one giant line.
const MAX_LINE: usize = 8 * 1024;

/// Shared per-plugin log context: its label, secrets to redact, and what the
/// host wants to remember of its output.
#[derive(Clone)]
pub struct LogCtx {
    inner: Arc<LogInner>,
}

struct LogInner {
    label: String,
    redact: Vec<String>,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    warnings: u64,
    /// The last lines the plugin wrote to stderr, to explain a crash.
    last_stderr: Vec<String>,
    status: String,
}

impl LogCtx {
    /// A context for the plugin shown as `label`, hiding the `redact` strings.
    pub fn new(label: impl Into<String>, redact: Vec<String>) -> Self {
        let redact = redact.into_iter().filter(|s| !s.is_empty()).collect();
        LogCtx { inner: Arc::new(LogInner { label: label.into(), redact, state: Mutex::default() }) }
    }

    /// How the plugin is named in logs and errors.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Warnings the plugin logged so far.
    pub fn warnings(&self) -> u64 {
        self.state().warnings
    }

    /// The last stderr lines, oldest first.
    pub fn last_stderr(&self) -> Vec<String> {
        self.state().last_stderr.clone()
    }

    /// What the plugin said it is doing.
    pub fn status(&self) -> String {
        self.state().status.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace every secret value in `text` so that no plugin output, however
    /// careless, prints one into the host's log.
    pub fn redact(&self, text: &str) -> String {
        let line: String = text.chars().take(MAX_LINE).collect();
        orchestrator_config::redact(&line, self.inner.redact.iter().map(String::as_str))
    }

    /// Log a line the plugin wrote through the log interface.
    pub fn write(&self, level: log::Level, message: &str) {
        let message = self.redact(message);
        let plugin = self.label();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => {
                self.state().warnings += 1;
                tracing::warn!(plugin, "{message}")
            }
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// Log one line of the plugin's stderr.
    fn stderr_line(&self, line: &str) {
        let line = self.redact(line.trim_end_matches(['\r', '\n']));
        tracing::info!(plugin = self.label(), stream = "stderr", "{line}");
        let mut state = self.state();
        state.last_stderr.push(line);
        let excess = state.last_stderr.len().saturating_sub(20);
        state.last_stderr.drain(..excess);
    }

    fn set_status(&self, message: &str) {
        let message = self.redact(message);
        tracing::debug!(plugin = self.label(), "status: {message}");
        self.state().status = message;
    }
}

impl log::Host for PluginState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log.write(level, &message);
        Ok(())
    }
}

impl progress::Host for PluginState {
    async fn status(&mut self, message: String) -> wasmtime::Result<()> {
        self.log.set_status(&message);
        Ok(())
    }
}

/// The plugin's stderr: split into lines and sent to the log.
pub struct StderrToLog {
    log: LogCtx,
}

impl StderrToLog {
    /// Stderr of the plugin behind `log`.
    pub fn new(log: LogCtx) -> Self {
        StderrToLog { log }
    }
}

impl wasmtime_wasi::cli::IsTerminal for StderrToLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for StderrToLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter { log: self.log.clone(), pending: Vec::new() })
    }
}

struct LineWriter {
    log: LogCtx,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_complete_lines(&mut self) {
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.log.stderr_line(&String::from_utf8_lossy(&line));
        }
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.log.stderr_line(&String::from_utf8_lossy(&line));
        }
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.pending.extend_from_slice(buf);
        this.emit_complete_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.pending.is_empty() {
            let line = std::mem::take(&mut this.pending);
            this.log.stderr_line(&String::from_utf8_lossy(&line));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_plugin_output() {
        let log = LogCtx::new("source x", vec!["hunter2".into(), String::new()]);
        assert_eq!(log.redact("password=hunter2!"), "password=[REDACTED]!");
        assert_eq!(log.redact("nothing here"), "nothing here");
    }

    #[test]
    fn stderr_is_split_into_lines_and_remembered() {
        let log = LogCtx::new("source x", vec![]);
        let mut w = LineWriter { log: log.clone(), pending: Vec::new() };
        w.pending.extend_from_slice(b"one\ntwo\nthr");
        w.emit_complete_lines();
        assert_eq!(log.last_stderr(), vec!["one", "two"]);
        assert_eq!(w.pending, b"thr");
    }
}
