//! The run lock: a live lock of another run fails only that job and leaves
//! the backup untouched; stale locks (expired, dead process) are taken over;
//! a run killed with SIGKILL at any moment leaves no set that looks complete,
//! and the next run removes its leftovers and succeeds; two runs on one
//! target never interleave.

use crate::harness::{Env, Run, bin};
use crate::incremental::{backup, snapshot};
use crate::roundtrip::assert_same_tree;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
[pipeline]
name = "locked"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
volsize_mb = 1
"#;

/// The same with a second source, `mail`, into the same target.
const TWO_SOURCES: &str = r#"
[pipeline]
name = "locked"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sources.mail]
plugin = "directory"
path = "{dir}/mail"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
volsize_mb = 1
"#;

const LOCK: &str = ".orchestrator-lock";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn iso(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// `mib` MiB of incompressible files (so 1 MiB volumes fill up one after
/// another) and a few small ones.
fn random_tree(env: &Env, name: &str, mib: usize) -> PathBuf {
    let root = env.path(name);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..mib {
        let mut buf = vec![0u8; 1 << 20];
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(root.join(format!("sub/blob-{i:02}.bin")), buf).unwrap();
    }
    std::fs::write(root.join("notes.txt"), "some notes\n").unwrap();
    std::fs::write(root.join("sub/small.txt"), "small\n").unwrap();
    root
}

/// Every file under `dir` with its content.
pub(crate) fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// Names of the objects in a source's place (no recursion: duplicity's are flat).
fn names(place: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(place)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Start the binary like `Env::run` does, without waiting.
fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache"))
        .env("ORCHESTRATOR_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Run a backup and SIGKILL it as soon as `when` holds for the names in
/// `place`; the names after the kill, or `None` if the run ended first.
fn kill_when(pipeline: &Path, place: &Path, when: impl Fn(&[String]) -> bool) -> Option<Vec<String>> {
    std::thread::sleep(Duration::from_millis(1100)); // set times are whole seconds
    let mut child = spawn(&["run", pipeline.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if when(&names(place)) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap(); // reaped: its pid is gone
            return Some(names(place));
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "the run neither ended nor got there");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn status(env: &Env, pipeline: &Path) -> serde_json::Value {
    let run = env.run(&["status", pipeline.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()[0].clone()
}

/// Sets per chain, and the status notes.
fn shape(status: &serde_json::Value) -> (Vec<usize>, Vec<String>) {
    let chains = status["chains"].as_array().unwrap().iter().map(|c| c["sets"].as_array().unwrap().len()).collect();
    let notes = status["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    (chains, notes)
}

fn restore_equals(env: &Env, pipeline: &Path, to: &str, expected: &Path) {
    let dest = env.path(to);
    let run =
        env.run(&["restore", pipeline.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_same_tree(expected, &dest);
}

fn no_debris(dir: &Path) {
    let debris: Vec<_> =
        files(dir).into_keys().filter(|p| p.to_string_lossy().contains(".orchestrator-tmp-")).collect();
    assert!(debris.is_empty(), "temporary objects left: {debris:?}");
}

fn write_lock(place: &Path, lock: &serde_json::Value) -> PathBuf {
    std::fs::create_dir_all(place).unwrap();
    let path = place.join(LOCK);
    std::fs::write(&path, serde_json::to_vec_pretty(lock).unwrap()).unwrap();
    path
}

#[test]
fn a_live_lock_of_another_run_fails_that_job_only_and_leaves_its_backup_untouched() {
    let env = Env::new();
    let data = random_tree(&env, "data", 1);
    std::fs::create_dir_all(env.path("mail")).unwrap();
    std::fs::write(env.path("mail/inbox"), "hello").unwrap();
    let pipeline = env.pipeline("p.toml", TWO_SOURCES);
    let first = backup(&env, &pipeline, &[]);
    assert_eq!(first["set"]["kind"], "full", "{first}");
    let s0 = snapshot(&env, &data, "s0");

    let docs = env.path("backup/docs");
    let (acquired, expires) = (now() - 120, now() + 480);
    let lock = write_lock(
        &docs,
        &serde_json::json!({
            "run_id": "18f0c0ffee-4d2", "hostname": hostname(), "pid": std::process::id(),
            "pipeline": "nightly-elsewhere", "sink": "offsite", "acquired_at": acquired, "expires_at": expires,
        }),
    );
    let before = files(&docs);
    let mail_before = files(&env.path("backup/mail"));

    std::fs::write(data.join("notes.txt"), "changed notes\n").unwrap();
    std::fs::write(env.path("mail/inbox"), "hello again").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", pipeline.to_str().unwrap(), "--json"], &[]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert_eq!(run.code, 1, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let job = |source: &str| report["jobs"].as_array().unwrap().iter().find(|j| j["source"] == source).unwrap().clone();
    let (docs_job, mail_job) = (job("docs"), job("mail"));
    assert_eq!(docs_job["ok"], false, "{report}");
    let message = docs_job["error"].as_str().unwrap();
    let lock_path = lock.display().to_string();
    let pid = format!("pid {}", std::process::id());
    let host = format!("`{}`", hostname());
    for needle in [
        "18f0c0ffee-4d2",
        "nightly-elsewhere",
        host.as_str(),
        pid.as_str(),
        &format!("since {}", iso(acquired)),
        &format!("expires at {}", iso(expires)),
        "Wait for that run to finish",
        &format!("delete {lock_path}"),
    ] {
        assert!(message.contains(needle), "{needle:?} is not in the message: {message}");
    }
    // The other job of the pipeline went on.
    assert_eq!(mail_job["ok"], true, "{report}");
    assert_eq!(mail_job["set"]["kind"], "incremental", "{report}");
    assert_ne!(files(&env.path("backup/mail")), mail_before);
    // Not one object of docs changed, the lock included.
    assert_eq!(files(&docs), before, "the locked backup was touched");

    // Without --json the message is on stdout too.
    let run = env.run(&["run", pipeline.to_str().unwrap(), "--source", "docs"], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("docs → dup: FAILED") && run.stdout.contains(&lock_path), "{}", run.all());
    assert_eq!(files(&docs), before, "the locked backup was touched");

    // Reading needs no lock: restore, status and verify work meanwhile, and
    // no plugin sees the lock.
    restore_equals(&env, &pipeline, "r0", &s0);
    let st = status(&env, &pipeline);
    assert_eq!(shape(&st), (vec![1], vec![]), "{st}");
    let verify = env.run(&["verify", pipeline.to_str().unwrap(), "--source", "docs"], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
    assert_eq!(files(&docs), before);

    // Once the lock is gone, the next run goes on.
    std::fs::remove_file(&lock).unwrap();
    let next = backup(&env, &pipeline, &["--source", "docs"]);
    assert_eq!(next["set"]["kind"], "incremental", "{next}");
    assert!(!lock.exists(), "the lock was not released");
    restore_equals(&env, &pipeline, "r1", &data);
}

#[test]
fn expired_and_dead_locks_are_taken_over_and_released() {
    let env = Env::new();
    let data = random_tree(&env, "data", 1);
    let pipeline = env.pipeline("p.toml", PIPELINE);
    let docs = env.path("backup/docs");

    // Expired, even from another host.
    let lock = write_lock(
        &docs,
        &serde_json::json!({
            "run_id": "old-run", "hostname": "some-other-host", "pid": 1, "pipeline": "locked",
            "acquired_at": now() - 4000, "expires_at": now() - 5,
        }),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", pipeline.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("taking over the stale lock") && run.stderr.contains("expired"), "{}", run.all());
    assert!(!lock.exists(), "the lock was not released");

    // This host, not expired, but its process is gone.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    write_lock(
        &docs,
        &serde_json::json!({
            "run_id": "dead-run", "hostname": hostname(), "pid": dead, "pipeline": "locked",
            "acquired_at": now() - 10, "expires_at": now() + 590,
        }),
    );
    std::fs::write(data.join("notes.txt"), "changed\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", pipeline.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains(&format!("process {dead} on this host is gone")), "{}", run.all());
    assert!(!lock.exists(), "the lock was not released");

    let st = status(&env, &pipeline);
    assert_eq!(shape(&st), (vec![2], vec![]), "{st}");
    restore_equals(&env, &pipeline, "r", &data);
}

#[test]
fn a_run_killed_at_any_moment_leaves_no_complete_looking_set_and_the_next_run_recovers() {
    let env = Env::new();
    let data = random_tree(&env, "data", 12);
    let pipeline = env.pipeline("p.toml", PIPELINE);
    let docs = env.path("backup/docs");

    // Killed while writing volumes.
    let is_volume = |n: &String| n.starts_with("duplicity-full.") && n.contains(".vol");
    let left = kill_when(&pipeline, &docs, |n| n.iter().any(is_volume)).expect("the run ended before a volume");
    assert!(!left.iter().any(|n| n.contains(".manifest")), "killed too late: {left:?}");
    assert!(left.iter().any(|n| n.starts_with(".orchestrator-tmp-")), "no object was being written: {left:?}");
    assert!(left.iter().any(|n| n == LOCK), "the killed run held no lock: {left:?}");
    let st = status(&env, &pipeline);
    let (chains, notes) = shape(&st);
    assert!(chains.is_empty(), "a killed run left a set that looks complete: {st}");
    assert!(notes.iter().any(|n| n.contains("incomplete set")), "{st}");

    // The next run takes the dead run's lock over, removes its leftovers and succeeds.
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", pipeline.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("taking over the stale lock"), "{}", run.all());
    assert!(run.stderr.contains("left over by an interrupted run"), "{}", run.all());
    let full: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(full["jobs"][0]["set"]["kind"], "full", "{full}");
    assert!(!docs.join(LOCK).exists());
    no_debris(&env.path("backup"));
    let st = status(&env, &pipeline);
    assert_eq!(shape(&st), (vec![1], vec![]), "{st}");
    restore_equals(&env, &pipeline, "r0", &data);

    // Killed late, twice: once its signatures are stored (before or just
    // after its manifest), and once its manifest is.
    let mut sets = 1;
    for (round, last) in ["duplicity-new-signatures.", "duplicity-inc."].into_iter().enumerate() {
        std::fs::write(data.join(format!("sub/late-{round}.txt")), format!("round {round}")).unwrap();
        std::fs::write(data.join("notes.txt"), format!("notes of round {round}\n")).unwrap();
        let wanted = |n: &String| n.starts_with(last) && (last.ends_with("signatures.") || n.ends_with(".manifest"));
        let before = names(&docs);
        let left = kill_when(&pipeline, &docs, |n| n.iter().any(|x| wanted(x) && !before.contains(x)));
        let st = status(&env, &pipeline);
        let (chains, notes) = shape(&st);
        eprintln!("late kill {round}: {left:?}");
        match left {
            Some(left) if left.iter().any(|n| n.ends_with(".manifest") && !before.contains(n)) => {
                // The manifest made it: a complete set, before the kill.
                sets += 1;
                assert_eq!((chains, notes), (vec![sets], vec![]), "{st}");
            }
            Some(_) => {
                assert_eq!(chains, vec![sets], "a set without a manifest counts: {st}");
                assert!(notes.iter().any(|n| n.contains("incomplete set")), "{st}");
            }
            None => {
                // Ended before the kill: a whole run.
                sets += 1;
                assert_eq!((chains, notes), (vec![sets], vec![]), "{st}");
            }
        }
        let inc = backup(&env, &pipeline, &[]);
        assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
        sets += 1;
        assert!(!docs.join(LOCK).exists());
        no_debris(&env.path("backup"));
        let st = status(&env, &pipeline);
        assert_eq!(shape(&st), (vec![sets], vec![]), "{st}");
        restore_equals(&env, &pipeline, &format!("r{}", round + 1), &data);
    }
    let verify = env.run(&["verify", pipeline.to_str().unwrap()], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}

#[test]
fn two_runs_on_one_target_never_interleave_and_the_loser_names_the_lock() {
    let env = Env::new();
    let data = random_tree(&env, "data", 12);
    let pipeline = env.pipeline("p.toml", PIPELINE);
    let docs = env.path("backup/docs");
    let lock = docs.join(LOCK);

    // A is stopped (SIGSTOP) in the middle of its volumes: B must not go on.
    let mut a = spawn(&["run", pipeline.to_str().unwrap(), "--json"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(lock.exists() && names(&docs).iter().any(|n| n.contains(".vol"))) {
        assert!(a.try_wait().unwrap().is_none(), "A ended before it wrote a volume");
        assert!(Instant::now() < deadline, "A never got to its volumes");
        std::thread::sleep(Duration::from_micros(200));
    }
    let signal = |sig: &str| {
        assert!(Command::new("kill").args([sig, &a.id().to_string()]).status().unwrap().success());
    };
    signal("-STOP");
    let holder: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    assert_eq!(holder["pid"], a.id(), "{holder}");
    let before = files(&docs);
    let b = env.run(&["run", pipeline.to_str().unwrap(), "--json"], &[]);
    let after = files(&docs);
    signal("-CONT");
    assert_eq!(b.code, 1, "{}", b.all());
    let report: serde_json::Value = serde_json::from_str(&b.stdout).unwrap();
    let message = report["jobs"][0]["error"].as_str().unwrap_or_default();
    let run_id = holder["run_id"].as_str().unwrap();
    for needle in [lock.display().to_string(), run_id.to_string(), format!("pid {}", a.id())] {
        assert!(message.contains(&needle), "{needle:?} is not in: {message}");
    }
    assert_eq!(before, after, "B touched A's objects");
    let a = finish(a);
    assert_eq!(a.code, 0, "{}", a.all());
    assert!(!lock.exists());
    let st = status(&env, &pipeline);
    assert_eq!(shape(&st), (vec![1], vec![]), "{st}");
    restore_equals(&env, &pipeline, "r0", &data);

    // Started together: one goes on, or they take turns; never both at once.
    std::fs::write(data.join("sub/new.txt"), "new").unwrap();
    std::fs::write(data.join("sub/blob-03.bin"), vec![3u8; 300_000]).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let runs: Vec<Run> = [0, 1]
        .map(|_| spawn(&["run", pipeline.to_str().unwrap(), "--json", "--full"]))
        .into_iter()
        .map(finish)
        .collect();
    let ok = runs.iter().filter(|r| r.code == 0).count();
    assert!(ok >= 1, "neither run succeeded:\n{}\n{}", runs[0].all(), runs[1].all());
    for r in runs.iter().filter(|r| r.code != 0) {
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let message = report["jobs"][0]["error"].as_str().unwrap_or_default();
        // Took turns within one second: the sink refuses a second set at the same time.
        let turns = message.contains("is not older than this run");
        let named = message.contains("locked by another run") && message.contains(&lock.display().to_string());
        assert!(named || turns, "{}", r.all());
    }
    assert!(!lock.exists());
    no_debris(&env.path("backup"));
    let st = status(&env, &pipeline);
    assert_eq!(shape(&st), (vec![1; 1 + ok], vec![]), "{st}");
    restore_equals(&env, &pipeline, "r1", &data);
    let verify = env.run(&["verify", pipeline.to_str().unwrap()], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}

/// Whoever can write the target can put anything at the lock's name. A fifo
/// is not waited on (a run used to hang there for ever, through SIGTERM), a
/// symlink is not followed (to a host file, or /dev/zero), a huge file is
/// not read: the job fails at once with the path and what to do.
#[test]
fn a_fifo_symlink_or_huge_file_at_the_lock_fails_the_job_at_once() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::write(env.path("data/a.txt"), "a").unwrap();
    let p = env.pipeline("p.toml", PIPELINE);
    let p = p.to_str().unwrap();
    let place = env.path("backup/docs");
    std::fs::create_dir_all(&place).unwrap();
    let lock = place.join(LOCK);
    let host_file = env.path("host-file");
    std::fs::write(&host_file, "HOST FILE CONTENT").unwrap();
    // Bounded: a run that hangs is killed and fails the test.
    let run_bounded = || {
        let mut child = spawn(&["run", p]);
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                panic!("the run hung: {}", finish(child).all());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        finish(child)
    };

    assert!(Command::new("mkfifo").arg(&lock).status().unwrap().success());
    let run = run_bounded();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(&lock.display().to_string()) && run.stdout.contains("not a regular file"),
        "{}",
        run.all()
    );

    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&host_file, &lock).unwrap();
    let run = run_bounded();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("is a symbolic link"), "{}", run.all());
    assert!(!run.all().contains("HOST FILE CONTENT"), "{}", run.all());

    std::fs::remove_file(&lock).unwrap();
    std::fs::write(&lock, vec![b'{'; 1 << 20]).unwrap();
    let run = run_bounded();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("more than the host ever writes there"), "{}", run.all());

    std::fs::remove_file(&lock).unwrap();
    let run = run_bounded();
    assert_eq!(run.code, 0, "{}", run.all());
}
