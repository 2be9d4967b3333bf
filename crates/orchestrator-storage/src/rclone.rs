//! `rclone:REMOTE:path` targets: whatever rclone reaches (Backblaze B2,
//! WebDAV and Nextcloud, Google Drive, OneDrive, Dropbox, …) through the
//! `rclone` program and the user's rclone configuration.
//!
//! Every operation is one rclone command: `lsjson` lists, `cat` streams an
//! object out, `rcat` streams one in (no temporary copy on this machine),
//! `deletefile` removes. An object is written under a temporary name
//! (`.orchestrator-tmp-…`) and moved into place with `moveto` once rclone
//! has it whole, so a reader never sees half an object; the next run
//! removes what an interrupted one left. rclone has no conditional create:
//! the run lock is checked, written and read back, which keeps two runs
//! apart unless they start within the same moment (`docs/pipeline.md`).

use crate::options::StorageOptions;
use crate::{MAX_SMALL, ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The keys a `[sinks.NAME.storage]` table may hold for `rclone:`.
const KEYS: &[&str] = &["program", "config", "config_password", "flags"];

const TEMP_PREFIX: &str = ".orchestrator-tmp-";

/// rclone's exit codes for a directory and a file that are not there.
const NOT_FOUND: [i32; 2] = [3, 4];

/// How much of rclone's error output a message quotes.
const STDERR_TAIL: usize = 2048;

/// A remote of the user's rclone configuration, and a path in it.
#[derive(Debug)]
struct Remote {
    program: PathBuf,
    /// `REMOTE:path`, without a trailing `/`.
    base: String,
    config: Option<PathBuf>,
    config_password: Option<String>,
    flags: Vec<String>,
}

/// What one rclone command said when it failed.
struct Failure {
    code: Option<i32>,
    stderr: String,
}

impl Failure {
    fn not_found(&self) -> bool {
        self.code.is_some_and(|c| NOT_FOUND.contains(&c))
    }

    /// The object is not there: by exit code, or by what backends that exit
    /// 1 for it say.
    fn missing(&self) -> bool {
        self.not_found() || self.stderr.contains("not found")
    }
}

impl Remote {
    fn new(url: &str, options: &StorageOptions) -> Result<Remote, StorageError> {
        options.only(KEYS, "rclone:")?;
        let bad = |why: &str| StorageError::Config(format!("target `{url}`: {why} (expected rclone:REMOTE:path)"));
        let base = url.strip_prefix("rclone:").ok_or_else(|| bad("not an rclone: target"))?;
        let (remote, path) = base.split_once(':').ok_or_else(|| bad("no `:` after the remote's name"))?;
        if remote.is_empty() && !path.starts_with(':') {
            return Err(bad("no remote name"));
        }
        if path.split('/').any(|c| c == "..") || base.contains(['\n', '\0']) {
            return Err(bad("a path without `..`"));
        }
        let program = options.path("program")?.unwrap_or_else(|| PathBuf::from("rclone"));
        let flags = match options.values.get("flags") {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|f| match f.as_str() {
                    Some(f) if f.starts_with("--") => Ok(f.to_string()),
                    _ => Err(StorageError::Config(format!(
                        "storage.flags: {f} is not an rclone option such as \"--fast-list\""
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(StorageError::Config("storage.flags: expected a list of rclone options".into())),
        };
        Ok(Remote {
            program,
            base: base.trim_end_matches('/').to_string(),
            config: options.path("config")?,
            config_password: options.secret("config_password")?,
            flags,
        })
    }

    fn full(&self, name: &str) -> String {
        if self.base.ends_with(':') { format!("{}{name}", self.base) } else { format!("{}/{name}", self.base) }
    }

    /// An rclone command on this remote: never asking for anything, only
    /// errors on stderr.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(["--ask-password=false", "--log-level", "ERROR"]);
        if let Some(config) = &self.config {
            c.arg("--config").arg(config);
        }
        if let Some(password) = &self.config_password {
            c.env("RCLONE_CONFIG_PASS", password);
        }
        c.args(&self.flags).args(args).stdin(Stdio::null());
        c
    }

    fn spawn(&self, mut command: Command) -> Result<Child, StorageError> {
        command.spawn().map_err(|e| {
            StorageError::Config(format!(
                "cannot run {} ({e}): install rclone, or name it with storage.program",
                self.program.display()
            ))
        })
    }

    /// Run to the end; its stdout on success.
    fn run(&self, args: &[&str]) -> Result<Result<Vec<u8>, Failure>, StorageError> {
        let child = self.spawn({
            let mut c = self.command(args);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c
        })?;
        let out = child.wait_with_output().map_err(|e| StorageError::Io(format!("waiting for rclone: {e}")))?;
        Ok(if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(Failure { code: out.status.code(), stderr: tail(&out.stderr) })
        })
    }

    /// The error for a failed command, naming what was being done.
    fn error(&self, doing: &str, name: &str, failure: &Failure) -> StorageError {
        let message = orchestrator_config::redact(
            &format!(
                "rclone failed {doing} {} (exit {}): {}",
                self.locate(name),
                failure.code.map_or("by a signal".to_string(), |c| c.to_string()),
                failure.stderr.trim()
            ),
            self.config_password.as_deref(),
        );
        if failure.not_found() { StorageError::NotFound(message) } else { StorageError::Io(message) }
    }

    /// Every object under `prefix` (names relative to it), host objects
    /// included.
    fn list_all(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            #[serde(rename = "Path")]
            path: String,
            #[serde(rename = "Size")]
            size: i64,
        }
        let dir = self.full(prefix);
        match self.run(&["lsjson", "-R", "--files-only", "--no-mimetype", "--no-modtime", &dir])? {
            Ok(out) => {
                let listed: Vec<Listed> = serde_json::from_slice(&out).map_err(|e| {
                    StorageError::Io(format!("rclone lsjson {}: unexpected output: {e}", self.locate(prefix)))
                })?;
                Ok(listed.into_iter().map(|l| ObjectInfo { name: l.path, size: l.size.max(0) as u64 }).collect())
            }
            Err(f) if f.not_found() => Ok(Vec::new()),
            Err(f) => Err(self.error("listing", prefix, &f)),
        }
    }

    /// Size and time of one object; `None` when there is none.
    fn stat(&self, name: &str) -> Result<Option<(u64, Option<i64>)>, StorageError> {
        #[derive(serde::Deserialize)]
        struct Stat {
            #[serde(rename = "Size")]
            size: i64,
            #[serde(rename = "IsDir")]
            is_dir: bool,
            #[serde(rename = "ModTime")]
            modified: Option<String>,
        }
        match self.run(&["lsjson", "--stat", "--no-mimetype", &self.full(name)])? {
            Ok(out) => {
                let stat: Stat = serde_json::from_slice(&out).map_err(|e| {
                    StorageError::Io(format!("rclone lsjson --stat {}: unexpected output: {e}", self.locate(name)))
                })?;
                if stat.is_dir {
                    return Err(StorageError::Io(format!("{} is a directory; remove it", self.locate(name))));
                }
                let modified =
                    stat.modified.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.timestamp());
                Ok(Some((stat.size.max(0) as u64, modified)))
            }
            Err(f) if f.missing() => Ok(None),
            Err(f) => Err(self.error("looking at", name, &f)),
        }
    }

    fn delete_object(&self, name: &str) -> Result<(), StorageError> {
        match self.run(&["deletefile", &self.full(name)])? {
            Ok(_) => Ok(()),
            Err(f) if f.missing() => Ok(()),
            Err(f) => Err(self.error("deleting", name, &f)),
        }
    }

    /// Start `rcat` into a temporary name beside `name`.
    fn upload(self: &Arc<Self>, name: &str) -> Result<RcloneSink, StorageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
        let temp_file =
            format!("{TEMP_PREFIX}{}-{}-{file}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let temp = if dir.is_empty() { temp_file } else { format!("{dir}/{temp_file}") };
        let mut child = self.spawn({
            let mut c = self.command(&["rcat", &self.full(&temp)]);
            c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
            c
        })?;
        let stdin = child.stdin.take();
        let stderr = drain(child.stderr.take());
        Ok(RcloneSink { storage: self.clone(), name: name.to_string(), temp, child: Some(child), stdin, stderr })
    }
}

/// The last [`STDERR_TAIL`] bytes of rclone's error output, as text.
fn tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&stderr[start..]).into_owned()
}

/// Read a child's stderr on a thread of its own (so a chatty rclone never
/// blocks on a full pipe while we write its stdin), keeping the tail.
fn drain(stderr: Option<std::process::ChildStderr>) -> Arc<Mutex<Vec<u8>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut stderr) = stderr {
        let kept = kept.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(STDERR_TAIL);
                kept.drain(..excess);
            }
        });
    }
    kept
}

/// An object being written: `rclone rcat` into a temporary name.
struct RcloneSink {
    storage: Arc<Remote>,
    name: String,
    temp: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl RcloneSink {
    /// Wait for rcat; its failure, if it failed.
    fn wait(&mut self) -> Result<(), StorageError> {
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let status = child.wait().map_err(|e| StorageError::Io(format!("waiting for rclone rcat: {e}")))?;
        if status.success() {
            return Ok(());
        }
        // The drain thread ends with the pipe; give it a moment to catch up.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let stderr = tail(&self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        Err(self.storage.error("writing", &self.name, &Failure { code: status.code(), stderr }))
    }
}

impl ObjectSink for RcloneSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let written = self.stdin.as_mut().map_or(Ok(()), |stdin| stdin.write_all(data));
        if let Err(e) = written {
            // rclone ended early: its own message says why.
            self.wait()?;
            return Err(StorageError::Io(format!("writing {}: {e}", self.storage.locate(&self.name))));
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        self.wait()?;
        let storage = self.storage.clone();
        match storage.run(&["moveto", &storage.full(&self.temp), &storage.full(&self.name)])? {
            Ok(_) => Ok(()),
            Err(f) => {
                let _ = storage.delete_object(&self.temp);
                Err(storage.error("moving into place", &self.name, &f))
            }
        }
    }
}

impl Drop for RcloneSink {
    /// Not committed: stop rcat. What it uploaded stays under the temporary
    /// name until the next run removes it.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An object streamed out by `rclone cat`; a failure of rclone at the end
/// is an error, never a short object.
struct RcloneReader {
    child: Child,
    stdout: ChildStdout,
    stderr: Arc<Mutex<Vec<u8>>>,
    storage: Arc<Remote>,
    name: String,
    done: bool,
}

impl Read for RcloneReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
            let status = self.child.wait()?;
            if !status.success() {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let stderr = tail(&self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                let e = self.storage.error("reading", &self.name, &Failure { code: status.code(), stderr });
                return Err(std::io::Error::other(e.to_string()));
            }
        }
        Ok(n)
    }
}

impl Drop for RcloneReader {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A remote of the user's rclone configuration and a path in it, shared
/// with the writers and readers it starts.
#[derive(Debug)]
pub struct RcloneStorage(Arc<Remote>);

impl RcloneStorage {
    /// The storage of `url` (`rclone:REMOTE:path`); nothing runs yet.
    pub fn new(url: &str, options: &StorageOptions) -> Result<RcloneStorage, StorageError> {
        Ok(RcloneStorage(Arc::new(Remote::new(url, options)?)))
    }
}

impl Storage for RcloneStorage {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(self.0.list_all(prefix)?.into_iter().filter(|o| !crate::is_reserved(&o.name)).collect())
    }

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        Ok(Box::new(self.0.upload(name)?))
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError> {
        let storage = &self.0;
        if storage.stat(name)?.is_none() {
            return Err(StorageError::NotFound(format!("{} does not exist", storage.locate(name))));
        }
        let mut child = storage.spawn({
            let mut c = storage.command(&["cat", &storage.full(name)]);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c
        })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = drain(child.stderr.take());
        Ok(Box::new(RcloneReader {
            child,
            stdout,
            stderr,
            storage: storage.clone(),
            name: name.to_string(),
            done: false,
        }))
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.0.delete_object(name)
    }

    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        if self.0.stat(name)?.is_some() {
            return Ok(false);
        }
        let mut object = self.put(name)?;
        object.write(data)?;
        object.commit()?;
        // No conditional create: if another writer's bytes are there now,
        // it won.
        Ok(self.read_small(name)?.is_some_and(|(held, _)| held == data))
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        let Some((size, modified)) = self.0.stat(name)? else { return Ok(None) };
        if size > MAX_SMALL {
            return Err(crate::too_large(self.0.locate(name), size));
        }
        let mut data = Vec::new();
        match self.get(name) {
            Ok(reader) => reader
                .take(MAX_SMALL)
                .read_to_end(&mut data)
                .map_err(|e| StorageError::Io(format!("reading {}: {e}", self.0.locate(name))))?,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some((data, modified)))
    }

    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError> {
        let mut removed = 0;
        for object in self.0.list_all(prefix)? {
            if crate::file_name(&object.name).starts_with(TEMP_PREFIX) {
                self.0.delete_object(&format!("{prefix}/{}", object.name))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn locate(&self, name: &str) -> String {
        self.0.locate(name)
    }
}

impl Remote {
    fn locate(&self, name: &str) -> String {
        format!("rclone:{}", self.full(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_remote_and_a_path() {
        let options = StorageOptions::default();
        let r = Remote::new("rclone:b2:bucket/backups/", &options).unwrap();
        assert_eq!(r.full("docs/x"), "b2:bucket/backups/docs/x");
        let r = Remote::new("rclone:gdrive:", &options).unwrap();
        assert_eq!(r.full("docs/x"), "gdrive:docs/x");
        for bad in ["rclone:nocolon", "rclone::x", "rclone:r:a/../b"] {
            let e = Remote::new(bad, &options).unwrap_err().to_string();
            assert!(e.contains("expected rclone:REMOTE:path"), "{bad}: {e}");
        }
    }
}
