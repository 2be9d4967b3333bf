//! Stopping a run midway: SIGTERM/SIGINT and `limits.timeout` end the job
//! between plugin calls, tell the source `finish(cancelled)` (so a TrueNAS
//! snapshot is released at once), store no set, release the lock, and the
//! next run succeeds.

use crate::harness::{Env, Run};
use std::path::Path;
use std::time::{Duration, Instant};
use test_servers::truenas::{FakeTrueNas, Generation};

const SLOW: &str = r#"
[pipeline]
name = "stopping"
cache_dir = "{dir}/cache"

[sources.slow]
plugin = { path = "{misbehaving}" }
behaviour = "{behaviour}"
{limits}

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
"#;

fn slow_pipeline(env: &Env, behaviour: &str, limits: &str) -> std::path::PathBuf {
    env.pipeline("p.toml", &SLOW.replace("{behaviour}", behaviour).replace("{limits}", limits))
}

fn kill(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    crate::lock::files(dir).keys().map(|p| p.display().to_string()).collect()
}

#[test]
fn sigterm_cancels_the_source_stores_no_set_and_the_next_run_succeeds() {
    let env = Env::new();
    let pipeline = slow_pipeline(&env, "slow", "");
    let started = Instant::now();
    let child = env.spawn(&["run", pipeline.to_str().unwrap()], &[]);
    // Into the walk: the slow source yields a file every 50 ms for minutes.
    std::thread::sleep(Duration::from_millis(1500));
    kill(child.id(), "TERM");
    let run = Run::wait(child);
    assert!(started.elapsed() < Duration::from_secs(30), "the run took {:?} to stop", started.elapsed());
    assert_eq!(run.code, 128 + 15, "{}", run.all());
    assert!(run.stderr.contains("SIGTERM received"), "{}", run.all());
    assert!(run.stderr.contains("finish: cancelled"), "the source is told the run was cancelled: {}", run.all());
    assert!(
        run.stdout.contains("slow → dup: FAILED: cancelled by SIGTERM: no new backup set was stored"),
        "{}",
        run.all()
    );
    let left = files(&env.path("backup"));
    assert!(!left.iter().any(|f| f.contains("manifest")), "no set may look complete: {left:?}");
    assert!(!left.iter().any(|f| f.contains(".orchestrator-lock")), "the lock is released: {left:?}");

    let pipeline = slow_pipeline(&env, "well-behaved", "");
    let next = env.run(&["run", pipeline.to_str().unwrap()], &[]);
    assert_eq!(next.code, 0, "{}", next.all());
    assert!(next.stderr.contains("finish: success"), "{}", next.all());
    let left = files(&env.path("backup"));
    assert_eq!(left.iter().filter(|f| f.contains("manifest")).count(), 1, "{left:?}");
    assert!(!left.iter().any(|f| f.contains(".orchestrator")), "no debris or lock: {left:?}");
}

#[test]
fn sigint_is_a_cancel_too() {
    let env = Env::new();
    let pipeline = slow_pipeline(&env, "slow", "");
    let child = env.spawn(&["run", pipeline.to_str().unwrap(), "--json"], &[]);
    std::thread::sleep(Duration::from_millis(1000));
    kill(child.id(), "INT");
    let run = Run::wait(child);
    assert_eq!(run.code, 128 + 2, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let job = &report["jobs"][0];
    assert_eq!(job["cancelled"], true, "{}", run.all());
    assert_eq!(job["ok"], false, "{}", run.all());
    assert!(job["error"].as_str().unwrap().starts_with("cancelled by SIGINT"), "{}", run.all());
}

#[test]
fn the_time_limit_cancels_the_source_instead_of_cutting_it_off() {
    let env = Env::new();
    let pipeline = slow_pipeline(&env, "slow", r#"limits = { timeout = "1s" }"#);
    let started = Instant::now();
    let run = env.run(&["run", pipeline.to_str().unwrap()], &[]);
    assert!(started.elapsed() < Duration::from_secs(30), "the run took {:?}", started.elapsed());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("did not finish within its time limit of 1s (`limits.timeout`)"), "{}", run.all());
    assert!(run.stderr.contains("finish: cancelled"), "{}", run.all());
    let left = files(&env.path("backup"));
    assert!(!left.iter().any(|f| f.contains("manifest") || f.contains(".orchestrator-lock")), "{left:?}");
}

#[test]
fn sigterm_while_the_snapshot_is_taken_releases_it_before_exiting() {
    use crate::truenas::{KEY, PIPELINE};
    let env = Env::new();
    let root = tempfile::Builder::new().prefix("fake-truenas-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = FakeTrueNas::start(Generation::V25_10, KEY, root.path());
    let mountpoint = server.add_dataset("tank/data");
    std::fs::write(mountpoint.join("a.txt"), "data").unwrap();
    let pipeline = env.pipeline(
        "p.toml",
        &PIPELINE
            .replace("{api}", &server.url())
            .replace("{dataset}", "tank/data")
            .replace("{extra}", &format!("local_path = \"{}\"", mountpoint.display())),
    );
    // The signal arrives while the source is inside `open`, right after the
    // NAS took the snapshot: the worst moment to be killed outright.
    let pid = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let target = pid.clone();
    server.after_snapshot(move |_, _| kill(target.load(std::sync::atomic::Ordering::SeqCst), "TERM"));
    let child = env.spawn(&["run", pipeline.to_str().unwrap()], &[("TRUENAS_KEY", KEY)]);
    pid.store(child.id(), std::sync::atomic::Ordering::SeqCst);
    let run = Run::wait(child);
    assert_eq!(run.code, 128 + 15, "{}", run.all());
    assert!(run.stdout.contains("docs → dup: FAILED: cancelled by SIGTERM"), "{}", run.all());
    assert_eq!(server.created().len(), 1, "{}", run.all());
    assert_eq!(server.created(), server.deleted(), "the snapshot is released before the run exits: {}", run.all());
    assert!(server.snapshot_ids().is_empty());
    assert!(!files(&env.path("backup")).iter().any(|f| f.contains("manifest")));
}
