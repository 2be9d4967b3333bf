//! A program of the pipeline author's choosing, run with the JSON report on
//! its stdin (a start as `{"event": "start", …}`), in an empty environment
//! but for `PATH` and three `ORCHESTRATOR_*` variables: it gets what it is
//! told and nothing of the orchestrator's own secrets.

use crate::Payload;
use orchestrator_config::NotifyEvent;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What of the program's output an error shows.
const SHOWN: usize = 2_000;

pub(crate) struct Command {
    program: PathBuf,
    args: Vec<String>,
}

impl Command {
    pub(crate) fn new(program: &Path, args: &[String]) -> Result<Command, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(program).map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{} is not an executable file", program.display()));
        }
        Ok(Command { program: program.to_path_buf(), args: args.to_vec() })
    }

    pub(crate) async fn send(&self, event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        let (pipeline, run_id, mut body) = match payload {
            Payload::Start { pipeline, run_id } => {
                (pipeline.clone(), run_id.clone(), serde_json::json!({ "pipeline": pipeline, "run_id": run_id }))
            }
            Payload::End(report) => (
                report.pipeline.clone(),
                report.run_id.clone(),
                serde_json::to_value(report.as_ref()).map_err(|e| e.to_string())?,
            ),
        };
        body["event"] = event.as_str().into();
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("ORCHESTRATOR_EVENT", event.as_str())
            .env("ORCHESTRATOR_PIPELINE", pipeline)
            .env("ORCHESTRATOR_RUN_ID", run_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A notifier that times out is dropped: its program goes with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let text = body.to_string();
        // A program that does not read its input must not block us: its
        // closed pipe is its choice.
        let write = async move {
            let _ = stdin.write_all(text.as_bytes()).await;
        };
        let mut said = Vec::new();
        let read = stderr.read_to_end(&mut said);
        let (_, _) = tokio::join!(write, read);
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&said);
        let said = said.trim();
        let said: String = said.chars().rev().take(SHOWN).collect::<Vec<_>>().into_iter().rev().collect();
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        Err(if said.is_empty() {
            format!("{} {how}", self.program.display())
        } else {
            format!("{} {how}: {said}", self.program.display())
        })
    }
}
