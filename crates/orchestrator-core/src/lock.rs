//! The run lock: at most one run writes a source's place in a sink's target.
//!
//! `<target>/<source>/.orchestrator-lock` is a small JSON object written
//! through the storage backend, created exclusively, so it works wherever
//! the target is. It names the run that holds it (run id, host, pid,
//! pipeline, sink) and until when: a heartbeat thread renews it every third
//! of its time to live while the job runs, after checking it is still ours.
//!
//! A lock is stale when its time is up, or when it was taken on this host
//! and its process is gone (`kill(pid, 0)` says no such process, the process
//! is a zombie, the pid now belongs to a younger process, or the host has
//! restarted since). A stale lock is taken over: removed (only if it is still
//! exactly what was judged stale), then created exclusively again, so of two
//! runs taking over at once only one creates it; the other reports the
//! winner. Before it writes anything, and again before retention removes
//! chains, a job checks that the lock is still its own, which also catches
//! the one interleaving of two takeovers that exclusive creation alone
//! cannot (a run whose lock was replaced stops without writing).
//!
//! Plugins can neither list nor name the lock (`storage::check_name`). Only
//! `run` takes it: restore, list, status and verify read complete sets only,
//! and objects appear atomically.

use crate::error::Error;
use crate::timespec;
use orchestrator_storage::Storage;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// The lock's name in a source's place.
pub const LOCK_NAME: &str = ".orchestrator-lock";

/// How long a lock lives without being renewed.
pub const TTL: Duration = Duration::from_secs(600);

/// What a lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The run that holds it.
    pub run_id: String,
    /// Where that run runs.
    pub hostname: String,
    /// Its process.
    pub pid: u32,
    /// Its pipeline.
    pub pipeline: String,
    /// The sink of the job.
    #[serde(default)]
    pub sink: String,
    /// When the run took it, seconds since the epoch.
    pub acquired_at: i64,
    /// When it is stale unless renewed, seconds since the epoch.
    pub expires_at: i64,
    /// When the process started (Linux: clock ticks after boot), so that a
    /// reused pid is not taken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// The host's boot id (Linux), so that a lock from before a restart is
    /// known to be stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The process's pid namespace (Linux), so that a container with the
    /// same hostname does not probe pids that are not its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
}

/// Who takes a lock.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The run's id.
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The sink's name.
    pub sink: String,
}

/// What this machine says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// It exists; with its start time when known.
    Running {
        /// Clock ticks after boot.
        started: Option<u64>,
    },
    /// No such process (or only its zombie).
    Gone,
    /// Cannot tell.
    Unknown,
}

/// Whether a lock held by someone else must be respected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its holder may be running: keep off.
    Live,
    /// Its holder is gone; why.
    Stale(String),
}

/// Where the lock is judged: this host and now.
#[derive(Debug, Clone)]
pub struct Here {
    /// This host's name.
    pub hostname: String,
    /// This host's boot id.
    pub boot_id: Option<String>,
    /// This process's pid namespace.
    pub pid_ns: Option<String>,
}

impl Here {
    /// This machine.
    pub fn this() -> Here {
        Here {
            hostname: hostname(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid").ok().map(|p| p.display().to_string()),
        }
    }
}

/// The stale rules: expired, or taken on this host by a process that is gone.
pub fn judge(lock: &LockInfo, now: i64, here: &Here, probe: impl Fn(u32) -> Process) -> Verdict {
    if now >= lock.expires_at {
        return Verdict::Stale(format!("it expired at {}", timespec::format(lock.expires_at)));
    }
    if lock.hostname != here.hostname {
        return Verdict::Live;
    }
    let known_differ = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
    if known_differ(&lock.boot_id, &here.boot_id) {
        return Verdict::Stale(format!("this host ({}) has restarted since it was taken", here.hostname));
    }
    if known_differ(&lock.pid_ns, &here.pid_ns) {
        // Same hostname, other pid namespace (a container): its pids are not ours to probe.
        return Verdict::Live;
    }
    match probe(lock.pid) {
        Process::Gone => Verdict::Stale(format!("its process {} on this host is gone", lock.pid)),
        Process::Running { started: Some(started) } if lock.pid_start.is_some_and(|s| s != started) => {
            Verdict::Stale(format!("its process {} on this host is gone (the pid is now another process's)", lock.pid))
        }
        Process::Running { .. } | Process::Unknown => Verdict::Live,
    }
}

/// Ask the kernel about `pid`: `kill(pid, 0)`, and `/proc/<pid>/stat` for
/// zombies and the start time.
pub fn probe(pid: u32) -> Process {
    let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return Process::Unknown };
    match rustix::process::test_kill_process(p) {
        Ok(()) | Err(rustix::io::Errno::PERM) => match proc_stat(pid) {
            Some(('Z' | 'X', _)) => Process::Gone,
            Some((_, started)) => Process::Running { started: Some(started) },
            None => Process::Running { started: None },
        },
        Err(rustix::io::Errno::SRCH) => Process::Gone,
        Err(_) => Process::Unknown,
    }
}

/// State and start time (field 22) of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// This host's name.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `9m 50s`, `2h 5m`, `40s`.
fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

/// Why a job may not write: the lock is someone else's.
fn held_message(held: &LockInfo, path: &str, owner: &Owner, here: &Here, now: i64) -> String {
    if held.run_id == owner.run_id {
        return format!(
            "another job of this run (sink `{}`) is writing this source's backups to the same target; two sinks \
             must not back up one source to one target: give each its own target (lock {path})",
            held.sink
        );
    }
    let sink = if held.sink.is_empty() { String::new() } else { format!(", sink `{}`", held.sink) };
    let process = if held.hostname == here.hostname { "this host" } else { "another host" };
    format!(
        "this source's backups in the target are locked by another run: run {} (pipeline `{}`{sink}) on host \
         `{}` ({process}), pid {}, holds {path} since {} ({} ago); it expires at {} (in {}) unless that run renews \
         it. Wait for that run to finish, or if that run is gone, delete {path} and run again",
        held.run_id,
        held.pipeline,
        held.hostname,
        held.pid,
        timespec::format(held.acquired_at),
        span(now - held.acquired_at),
        timespec::format(held.expires_at),
        span(held.expires_at - now),
    )
}

/// A lock this run holds; released when dropped (only while it is ours).
pub struct RunLock {
    backend: Arc<dyn Storage>,
    name: String,
    path: String,
    run_id: String,
    heartbeat: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    lost: watch::Receiver<Option<String>>,
    released: bool,
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLock").field("path", &self.path).field("run_id", &self.run_id).finish()
    }
}

/// What `read` found.
enum Found {
    None,
    Ours,
    Other(String),
}

impl RunLock {
    /// Take the lock of source place `place` in `backend` for `owner`, taking
    /// over a stale one; an error says who holds it and what to do.
    pub fn acquire(backend: Arc<dyn Storage>, place: &str, owner: &Owner) -> Result<RunLock, Error> {
        Self::acquire_for(backend, place, owner, TTL)
    }

    /// [`RunLock::acquire`] with another time to live (tests).
    pub fn acquire_for(backend: Arc<dyn Storage>, place: &str, owner: &Owner, ttl: Duration) -> Result<RunLock, Error> {
        let name = format!("{place}/{LOCK_NAME}");
        let path = backend.locate(&name);
        let here = Here::this();
        let fail = |what: &str, e: orchestrator_storage::StorageError| {
            Error::Lock(format!("cannot {what} the lock {path}: {e}"))
        };
        let changing_hands = || format!("cannot take the lock {path}: it keeps changing hands; run again later");
        let mut rounds = 0;
        loop {
            let now = now();
            let info = LockInfo {
                run_id: owner.run_id.clone(),
                hostname: here.hostname.clone(),
                pid: std::process::id(),
                pipeline: owner.pipeline.clone(),
                sink: owner.sink.clone(),
                acquired_at: now,
                expires_at: now + ttl.as_secs() as i64,
                pid_start: proc_stat(std::process::id()).map(|(_, s)| s),
                boot_id: here.boot_id.clone(),
                pid_ns: here.pid_ns.clone(),
            };
            let json = serde_json::to_vec_pretty(&info).expect("a lock serializes");
            if backend.create_new_checked(&name, &json).map_err(|e| fail("create", e))? {
                return Ok(Self::start(backend, name, path, info, ttl));
            }
            // Someone has it: judge what is there.
            rounds += 1;
            if rounds > 4 {
                return Err(Error::Lock(changing_hands()));
            }
            let Some((held_bytes, modified)) = backend.read_small_checked(&name).map_err(|e| fail("read", e))? else {
                continue; // released meanwhile
            };
            let stale = match serde_json::from_slice::<LockInfo>(&held_bytes) {
                Ok(held) => match judge(&held, now, &here, probe) {
                    Verdict::Live => return Err(Error::Lock(held_message(&held, &path, owner, &here, now))),
                    Verdict::Stale(why) => {
                        format!("run {} (host `{}`, pid {}): {why}", held.run_id, held.hostname, held.pid)
                    }
                },
                // Unreadable (written by hand, or cut short where the backend
                // cannot create whole objects): stale once untouched for a TTL.
                Err(e) => match modified {
                    Some(m) if now - m >= ttl.as_secs() as i64 => {
                        format!("an unreadable lock ({e}) untouched since {}", timespec::format(m))
                    }
                    _ => {
                        return Err(Error::Lock(format!(
                            "the lock {path} cannot be read ({e}); if no run is writing this source's backups, \
                             delete it and run again"
                        )));
                    }
                },
            };
            // Remove exactly what was judged stale: if it changed meanwhile,
            // another run took it over first, and the next round says who.
            match backend.read_small_checked(&name).map_err(|e| fail("read", e))? {
                Some((bytes, _)) if bytes == held_bytes => {}
                _ => continue,
            }
            tracing::warn!("taking over the stale lock {path} of {stale}");
            backend.remove(&name).map_err(|e| fail("remove", e))?;
            // The next round creates it exclusively; if another run was
            // faster, it reports that run.
        }
    }

    fn start(backend: Arc<dyn Storage>, name: String, path: String, info: LockInfo, ttl: Duration) -> RunLock {
        let (stop, stopped) = mpsc::channel();
        let (lost_tx, lost) = watch::channel(None);
        let run_id = info.run_id.clone();
        let thread = {
            let (backend, name, path) = (backend.clone(), name.clone(), path.clone());
            std::thread::Builder::new()
                .name("lock-heartbeat".into())
                .spawn(move || heartbeat(&*backend, &name, &path, info, ttl, &stopped, &lost_tx))
        };
        let heartbeat = match thread {
            Ok(handle) => Some((stop, handle)),
            Err(e) => {
                // Without renewal the lock expires after its TTL; jobs longer than that may be taken over.
                tracing::warn!("cannot start the heartbeat of the lock {path}: {e}");
                None
            }
        };
        RunLock { backend, name, path, run_id, heartbeat, lost, released: false }
    }

    /// Where the lock is.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn read(&self) -> Result<Found, Error> {
        let found = self
            .backend
            .read_small_checked(&self.name)
            .map_err(|e| Error::Lock(format!("cannot read the lock {}: {e}", self.path)))?;
        Ok(match found {
            None => Found::None,
            Some((bytes, _)) => match serde_json::from_slice::<LockInfo>(&bytes) {
                Ok(info) if info.run_id == self.run_id => Found::Ours,
                Ok(info) => Found::Other(format!(
                    "run {} of pipeline `{}` on host `{}`, pid {}",
                    info.run_id, info.pipeline, info.hostname, info.pid
                )),
                Err(_) => Found::Other("something unreadable".into()),
            },
        })
    }

    /// Fail unless the lock is still ours: call before writing.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(reason) = self.lost.borrow().clone() {
            return Err(Error::Lock(reason));
        }
        match self.read()? {
            Found::Ours => Ok(()),
            Found::None => {
                Err(Error::Lock(format!("the lock {} was removed while this run held it; stopping", self.path)))
            }
            Found::Other(who) => Err(Error::Lock(format!("the lock {} was taken over by {who}; stopping", self.path))),
        }
    }

    /// Resolves when the heartbeat finds the lock is no longer ours, with
    /// why; it does not borrow the lock, so a task can wait on it.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            let reason = rx.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
            match reason {
                Some(reason) => reason,
                // The heartbeat stopped without losing the lock.
                None => std::future::pending().await,
            }
        }
    }

    fn stop_heartbeat(&mut self) {
        if let Some((stop, handle)) = self.heartbeat.take() {
            drop(stop);
            let _ = handle.join();
        }
    }

    /// Stop renewing and remove the lock if it is still ours.
    pub fn release(mut self) -> Result<(), Error> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), Error> {
        self.stop_heartbeat();
        if std::mem::replace(&mut self.released, true) {
            return Ok(());
        }
        match self.read()? {
            Found::Ours => self.backend.remove(&self.name).map_err(|e| {
                Error::Lock(format!(
                    "cannot remove the lock {}: {e}; delete it if no run is writing this source's backups",
                    self.path
                ))
            }),
            Found::None => Ok(()),
            Found::Other(who) => {
                Err(Error::Lock(format!("left the lock {} alone: it now belongs to {who}", self.path)))
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            tracing::warn!("{e}");
        }
    }
}

/// Renew the lock every third of its TTL until stopped; tell `lost` and stop
/// if it is no longer ours, or could not be renewed before it expires.
fn heartbeat(
    backend: &dyn Storage,
    name: &str,
    path: &str,
    mut info: LockInfo,
    ttl: Duration,
    stop: &mpsc::Receiver<()>,
    lost: &watch::Sender<Option<String>>,
) {
    let interval = ttl / 3;
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match renew(backend, name, path, &mut info, ttl) {
            Ok(()) => {}
            Err(Renewal::Lost(reason)) => {
                tracing::error!("{reason}");
                let _ = lost.send(Some(reason));
                return;
            }
            Err(Renewal::Failed(e)) => {
                if now() + interval.as_secs() as i64 >= info.expires_at {
                    let reason = format!("the lock {path} could not be renewed before it expires ({e}); stopping");
                    tracing::error!("{reason}");
                    let _ = lost.send(Some(reason));
                    return;
                }
                tracing::warn!("cannot renew the lock {path} (will retry): {e}");
            }
        }
    }
}

enum Renewal {
    Lost(String),
    Failed(String),
}

fn renew(backend: &dyn Storage, name: &str, path: &str, info: &mut LockInfo, ttl: Duration) -> Result<(), Renewal> {
    let mut renewed = info.clone();
    renewed.expires_at = now() + ttl.as_secs() as i64;
    let json = serde_json::to_vec_pretty(&renewed).expect("a lock serializes");
    match backend.read_small_checked(name).map_err(|e| Renewal::Failed(e.to_string()))? {
        // Removed by hand: take it again if no one else has.
        None => {
            if !backend.create_new_checked(name, &json).map_err(|e| Renewal::Failed(e.to_string()))? {
                return Err(Renewal::Lost(format!("the lock {path} was removed and taken by another run; stopping")));
            }
        }
        Some((bytes, _)) => match serde_json::from_slice::<LockInfo>(&bytes) {
            Ok(held) if held.run_id == info.run_id => {
                backend.replace(name, &json).map_err(|e| Renewal::Failed(e.to_string()))?;
            }
            Ok(held) => {
                return Err(Renewal::Lost(format!(
                    "the lock {path} was taken over by run {} on host `{}`, pid {}; stopping",
                    held.run_id, held.hostname, held.pid
                )));
            }
            Err(_) => return Err(Renewal::Lost(format!("the lock {path} was overwritten; stopping"))),
        },
    }
    *info = renewed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn here() -> Here {
        Here { hostname: "box".into(), boot_id: Some("boot-1".into()), pid_ns: Some("pid:[1]".into()) }
    }

    fn lock(host: &str, expires_at: i64) -> LockInfo {
        LockInfo {
            run_id: "other".into(),
            hostname: host.into(),
            pid: 4242,
            pipeline: "p".into(),
            sink: "dup".into(),
            acquired_at: NOW - 60,
            expires_at,
            pid_start: Some(77),
            boot_id: Some("boot-1".into()),
            pid_ns: Some("pid:[1]".into()),
        }
    }

    fn stale(v: Verdict) -> String {
        match v {
            Verdict::Stale(why) => why,
            Verdict::Live => panic!("judged live"),
        }
    }

    #[test]
    fn expired_locks_are_stale_wherever_they_were_taken() {
        let alive = |_| Process::Running { started: Some(77) };
        for host in ["box", "elsewhere"] {
            assert!(stale(judge(&lock(host, NOW), NOW, &here(), alive)).contains("expired"));
            assert!(stale(judge(&lock(host, NOW - 1), NOW, &here(), alive)).contains("expired"));
            assert_eq!(judge(&lock(host, NOW + 1), NOW, &here(), alive), Verdict::Live);
        }
    }

    #[test]
    fn a_gone_process_on_this_host_makes_a_lock_stale() {
        let l = lock("box", NOW + 500);
        assert!(
            stale(judge(&l, NOW, &here(), |pid| if pid == 4242 { Process::Gone } else { Process::Unknown }))
                .contains("process 4242 on this host is gone")
        );
        // A reused pid: a process runs, but not the one that took the lock.
        assert!(stale(judge(&l, NOW, &here(), |_| Process::Running { started: Some(78) })).contains("another"));
        assert_eq!(judge(&l, NOW, &here(), |_| Process::Running { started: Some(77) }), Verdict::Live);
        assert_eq!(judge(&l, NOW, &here(), |_| Process::Running { started: None }), Verdict::Live);
        assert_eq!(judge(&l, NOW, &here(), |_| Process::Unknown), Verdict::Live);
        // A lock that does not know its process's start time.
        let old = LockInfo { pid_start: None, boot_id: None, pid_ns: None, ..l.clone() };
        assert_eq!(judge(&old, NOW, &here(), |_| Process::Running { started: Some(1) }), Verdict::Live);
        assert!(stale(judge(&old, NOW, &here(), |_| Process::Gone)).contains("gone"));
    }

    #[test]
    fn other_hosts_and_other_pid_namespaces_are_not_probed() {
        let never = |_| -> Process { panic!("probed a pid that is not ours") };
        assert_eq!(judge(&lock("elsewhere", NOW + 500), NOW, &here(), never), Verdict::Live);
        let container = LockInfo { pid_ns: Some("pid:[2]".into()), ..lock("box", NOW + 500) };
        assert_eq!(judge(&container, NOW, &here(), never), Verdict::Live);
        // After a restart of this host nothing of before runs.
        let before = LockInfo { boot_id: Some("boot-0".into()), ..lock("box", NOW + 500) };
        assert!(stale(judge(&before, NOW, &here(), never)).contains("restarted"));
    }

    #[test]
    fn the_kernel_is_asked_about_processes() {
        match probe(std::process::id()) {
            Process::Running { started } => {
                assert!(started.is_some() || !std::path::Path::new("/proc/self/stat").exists())
            }
            other => panic!("this process is {other:?}"),
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(probe(pid), Process::Gone);
        assert_eq!(probe(0), Process::Unknown);
        assert_eq!(probe(u32::MAX), Process::Unknown);
    }

    fn backend(dir: &std::path::Path) -> Arc<dyn Storage> {
        orchestrator_storage::open(&format!("file://{}", dir.display())).unwrap()
    }

    fn owner(run: &str) -> Owner {
        Owner { run_id: run.into(), pipeline: "nightly".into(), sink: "dup".into() }
    }

    fn write_lock(dir: &std::path::Path, info: &LockInfo) {
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs").join(LOCK_NAME), serde_json::to_vec(info).unwrap()).unwrap();
    }

    fn read_lock(dir: &std::path::Path) -> Option<LockInfo> {
        std::fs::read(dir.join("docs").join(LOCK_NAME)).ok().map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn foreign(expires_at: i64, pid: u32) -> LockInfo {
        let here = Here::this();
        LockInfo {
            run_id: "foreign-run".into(),
            hostname: here.hostname,
            pid,
            pipeline: "other-pipeline".into(),
            sink: "dup".into(),
            acquired_at: now() - 30,
            expires_at,
            pid_start: None,
            boot_id: None,
            pid_ns: None,
        }
    }

    #[test]
    fn a_live_lock_keeps_others_off_and_is_released_only_by_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let b = backend(tmp.path());
        let lock = RunLock::acquire(b.clone(), "docs", &owner("run-1")).unwrap();
        let info = read_lock(tmp.path()).unwrap();
        assert_eq!((info.run_id.as_str(), info.pid, info.pipeline.as_str()), ("run-1", std::process::id(), "nightly"));
        assert_eq!(info.expires_at - info.acquired_at, TTL.as_secs() as i64);
        assert_eq!(info.hostname, hostname());
        lock.check().unwrap();

        let err = RunLock::acquire(b.clone(), "docs", &owner("run-2")).unwrap_err().to_string();
        let path = tmp.path().join("docs").join(LOCK_NAME).display().to_string();
        for needle in ["run-1", "nightly", &hostname(), &format!("pid {}", std::process::id()), "Wait", &path] {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        // Another source's place is another lock.
        let elsewhere = RunLock::acquire(b.clone(), "mail", &owner("run-2")).unwrap();
        // The same run twice (two sinks, one target) is told apart.
        let same = RunLock::acquire(b.clone(), "docs", &owner("run-1")).unwrap_err().to_string();
        assert!(same.contains("another job of this run"), "{same}");

        lock.release().unwrap();
        assert!(read_lock(tmp.path()).is_none());
        // A lock that is someone else's by now is left alone.
        let lock = RunLock::acquire(b.clone(), "docs", &owner("run-3")).unwrap();
        write_lock(tmp.path(), &foreign(now() + 600, std::process::id()));
        assert!(lock.check().unwrap_err().to_string().contains("foreign-run"));
        assert!(lock.release().unwrap_err().to_string().contains("left the lock"));
        assert_eq!(read_lock(tmp.path()).unwrap().run_id, "foreign-run");
        drop(elsewhere);
        assert!(!tmp.path().join("mail").join(LOCK_NAME).exists(), "dropping did not release");
    }

    #[test]
    fn expired_and_dead_locks_are_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let b = backend(tmp.path());
        write_lock(tmp.path(), &foreign(now() - 1, std::process::id()));
        let lock = RunLock::acquire(b.clone(), "docs", &owner("run-1")).unwrap();
        assert_eq!(read_lock(tmp.path()).unwrap().run_id, "run-1");
        lock.release().unwrap();

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        write_lock(tmp.path(), &foreign(now() + 600, dead));
        let lock = RunLock::acquire(b.clone(), "docs", &owner("run-2")).unwrap();
        assert_eq!(read_lock(tmp.path()).unwrap().run_id, "run-2");
        lock.release().unwrap();

        // The same on another host is live until it expires.
        write_lock(tmp.path(), &LockInfo { hostname: "elsewhere".into(), ..foreign(now() + 600, dead) });
        let err = RunLock::acquire(b.clone(), "docs", &owner("run-3")).unwrap_err().to_string();
        assert!(err.contains("elsewhere") && err.contains("another host"), "{err}");
    }

    #[test]
    fn an_unreadable_lock_is_stale_only_once_untouched_for_a_ttl() {
        let tmp = tempfile::tempdir().unwrap();
        let b = backend(tmp.path());
        std::fs::create_dir_all(tmp.path().join("docs")).unwrap();
        let path = tmp.path().join("docs").join(LOCK_NAME);
        std::fs::write(&path, b"").unwrap();
        let err = RunLock::acquire(b.clone(), "docs", &owner("run-1")).unwrap_err().to_string();
        assert!(err.contains("cannot be read") && err.contains(&path.display().to_string()), "{err}");
        let old = std::time::SystemTime::now() - TTL - Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        let lock = RunLock::acquire(b, "docs", &owner("run-1")).unwrap();
        assert_eq!(read_lock(tmp.path()).unwrap().run_id, "run-1");
        drop(lock);
        assert!(read_lock(tmp.path()).is_none());
    }

    #[test]
    fn of_runs_taking_over_at_once_exactly_one_keeps_the_lock() {
        for round in 0..20 {
            let tmp = tempfile::tempdir().unwrap();
            let b = backend(tmp.path());
            write_lock(tmp.path(), &foreign(now() - 1, 1));
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let results: Vec<_> = (0..4)
                .map(|i| {
                    let (b, barrier) = (b.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        RunLock::acquire(b, "docs", &owner(&format!("run-{i}")))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            // Exclusive creation lets one through; only if a takeover removes
            // a lock created a moment before does a second one get through,
            // and then its check before writing stops it: exactly one goes on.
            let acquired = results.iter().filter(|r| r.is_ok()).count();
            assert!((1..=2).contains(&acquired), "round {round}: {results:?}");
            let going_on = results.iter().filter(|r| r.as_ref().is_ok_and(|l| l.check().is_ok())).count();
            assert_eq!(going_on, 1, "round {round}: {results:?}");
            for r in &results {
                if let Err(Error::Lock(e)) = r {
                    assert!(e.contains("locked by another run") || e.contains("changing hands"), "{e}");
                }
            }
        }
    }

    #[test]
    fn the_heartbeat_renews_and_notices_a_takeover() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let b = backend(tmp.path());
        let ttl = Duration::from_secs(3);
        let lock = RunLock::acquire_for(b.clone(), "docs", &owner("run-1"), ttl).unwrap();
        let first = read_lock(tmp.path()).unwrap();
        std::thread::sleep(Duration::from_millis(2600));
        let renewed = read_lock(tmp.path()).unwrap();
        assert_eq!(renewed.run_id, "run-1");
        assert!(renewed.expires_at > first.expires_at, "not renewed: {first:?} {renewed:?}");
        assert_eq!(renewed.acquired_at, first.acquired_at);

        // Someone else's now: the next beat notices and says so.
        write_lock(tmp.path(), &foreign(now() + 600, std::process::id()));
        let reason = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), lock.lost()).await.expect("the loss went unnoticed")
        });
        assert!(reason.contains("taken over by run foreign-run"), "{reason}");
        assert!(lock.check().is_err());
        assert!(lock.release().is_err());
        assert_eq!(read_lock(tmp.path()).unwrap().run_id, "foreign-run", "released someone else's lock");

        // Removed by hand while held: taken again by the holder.
        std::fs::remove_file(tmp.path().join("docs").join(LOCK_NAME)).unwrap();
        let lock = RunLock::acquire_for(b, "docs", &owner("run-2"), ttl).unwrap();
        std::fs::remove_file(tmp.path().join("docs").join(LOCK_NAME)).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(read_lock(tmp.path()).map(|l| l.run_id).as_deref(), Some("run-2"));
        lock.check().unwrap();
    }
}
