//! `daemon`: the binary runs a pipeline on its schedule (intervals of
//! seconds, so the tests finish fast), never two runs of one source at once,
//! catches up a missed time, reloads on SIGHUP (refusing a broken file),
//! stops on SIGTERM; `status --max-age` as a health check.

use crate::harness::Env;
use std::process::Child;
use std::time::{Duration, Instant};

pub fn kill(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// A directory source into a plain local archive, with `extra` in [pipeline]
/// and `source_extra` in the source's table.
fn pipeline(env: &Env, extra: &str, source_extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::write(env.path("data/a.txt"), "a file\n").unwrap();
    env.pipeline(
        "p.toml",
        &format!(
            r#"
[pipeline]
name = "scheduled"
cache_dir = "{{dir}}/cache"
{extra}

[sources.docs]
plugin = "directory"
path = "{{dir}}/data"
{source_extra}

[sinks.local]
plugin = "duplicity-sink"
target = "file://{{dir}}/target"
encryption = "none"
"#
        ),
    )
}

/// Sets stored for `docs` (one manifest each).
fn sets(env: &Env) -> usize {
    let dir = env.path("target/docs");
    std::fs::read_dir(&dir)
        .map(|d| d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".manifest")).count())
        .unwrap_or(0)
}

/// Wait until `done` holds, or fail after `limit` with the daemon's output.
fn wait_until(child: &mut Option<Child>, limit: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            let mut c = child.take().unwrap();
            let _ = c.kill();
            let run = crate::harness::Run::wait(c);
            panic!("{what} did not happen within {limit:?}\n{}", run.all());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(child: Option<Child>) -> crate::harness::Run {
    let child = child.unwrap();
    kill(child.id(), "TERM");
    crate::harness::Run::wait(child)
}

#[test]
fn runs_on_its_interval_and_stops_on_sigterm() {
    let env = Env::new();
    let p = pipeline(&env, r#"schedule = "every 2s""#, "");
    let started = Instant::now();
    let mut daemon = Some(env.spawn(&["daemon", p.to_str().unwrap()], &[]));
    wait_until(&mut daemon, Duration::from_secs(30), "two scheduled runs", || sets(&env) >= 2);
    // The first time is one interval after the start, not at once.
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
    let run = stop(daemon);
    assert_eq!(run.code, 143, "{}", run.all());
    assert!(run.stderr.contains("scheduled source=docs schedule=every 2s"), "{}", run.all());
    assert!(run.stderr.contains("daemon stopped: "), "{}", run.all());
    assert!(!env.path("target/docs/.orchestrator-lock").exists(), "the lock is left: {}", run.all());
    // What the daemon stored restores.
    let status = env.run(&["status", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(status.code, 0, "{}", status.all());
}

#[test]
fn a_run_still_going_makes_its_scheduled_time_a_skip() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::write(env.path("data/big.bin"), vec![7u8; 3 << 20]).unwrap();
    // A sink that stalls mid-stream until its 6 s call timeout: runs due every second meanwhile.
    let p = env.pipeline(
        "p.toml",
        r#"
[pipeline]
name = "skips"
cache_dir = "{dir}/cache"
schedule = "every 1s"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.stuck]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/target"
fault_after_bytes = 1000000
fault = "stall"
limits = { call_timeout = "6s" }
"#,
    );
    let mut daemon = Some(env.spawn(&["daemon", p.to_str().unwrap()], &[]));
    let history = env.path("cache/runs.json");
    wait_until(&mut daemon, Duration::from_secs(40), "the stalled run's end", || history.exists());
    let run = stop(daemon);
    assert_eq!(run.code, 143, "{}", run.all());
    let skips = run.stderr.matches("skipped the scheduled run: the last one is still going").count();
    assert!(skips >= 3, "{skips} skips\n{}", run.all());
    // One run at a time: never a second "starting" before the first ended.
    let log: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("starting 1 job(s)") || l.contains("run failed")).collect();
    assert!(log.len() >= 2 && log[0].contains("starting") && log[1].contains("run failed"), "{log:#?}");
    assert!(run.stderr.contains("scheduled time(s) skipped"), "{}", run.all());
}

#[test]
fn catch_up_runs_a_time_missed_while_down_once_at_start() {
    for catch_up in [true, false] {
        let env = Env::new();
        let p = pipeline(&env, &format!("schedule = \"@daily\"\ncatch_up = {catch_up}"), "");
        // The history says the last run was two days ago: today's time was missed.
        std::fs::create_dir_all(env.path("cache")).unwrap();
        let two_days_ago = jiff::Timestamp::now().as_second() - 2 * 86_400;
        std::fs::write(
            env.path("cache/runs.json"),
            format!(r#"{{"sources": {{"docs": {{"last_start": {two_days_ago}, "jobs": {{}}}}}}}}"#),
        )
        .unwrap();
        let mut daemon = Some(env.spawn(&["daemon", p.to_str().unwrap()], &[]));
        if catch_up {
            wait_until(&mut daemon, Duration::from_secs(20), "the catch-up run", || sets(&env) == 1);
            // Once: the next time is tomorrow.
            std::thread::sleep(Duration::from_secs(3));
            assert_eq!(sets(&env), 1);
        } else {
            std::thread::sleep(Duration::from_secs(4));
            assert_eq!(sets(&env), 0, "without catch_up nothing runs before the next time");
        }
        let run = stop(daemon);
        assert_eq!(run.code, 143, "{}", run.all());
        assert_eq!(run.stderr.contains("was missed while the daemon was down"), catch_up, "{}", run.all());
    }
}

#[test]
fn sighup_reloads_the_file_and_a_broken_one_is_refused() {
    let env = Env::new();
    // New Year's midnight: nothing runs until the reload brings a schedule that does.
    let p = pipeline(&env, r#"schedule = "0 0 1 1 *""#, "");
    let mut daemon = Some(env.spawn(&["daemon", p.to_str().unwrap()], &[]));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sets(&env), 0);
    let pid = daemon.as_ref().unwrap().id();
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace(r#"schedule = "0 0 1 1 *""#, r#"schedule = "every 1s""#)).unwrap();
    kill(pid, "HUP");
    wait_until(&mut daemon, Duration::from_secs(20), "a run after the reload", || sets(&env) >= 1);
    // A broken file is refused; the daemon goes on with what it has.
    std::fs::write(&p, text.replace(r#"schedule = "0 0 1 1 *""#, r#"schedule = "every never""#)).unwrap();
    kill(pid, "HUP");
    let before = sets(&env);
    wait_until(&mut daemon, Duration::from_secs(20), "runs after the refused reload", || sets(&env) >= before + 2);
    let run = stop(daemon);
    assert_eq!(run.code, 143, "{}", run.all());
    assert!(run.stderr.contains("reload refused, the running pipeline is kept"), "{}", run.all());
    assert!(run.stderr.contains("p.toml:5:12: pipeline.schedule"), "{}", run.all());
}

#[test]
fn without_any_schedule_the_daemon_says_what_to_add() {
    let env = Env::new();
    let p = pipeline(&env, "", "");
    let run = env.run_binary(&["daemon", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no source has a schedule; set `schedule` in [pipeline]"), "{}", run.all());
}

#[test]
fn a_source_schedule_overrides_the_pipeline_one() {
    let env = Env::new();
    let p = pipeline(&env, r#"schedule = "0 0 1 1 *""#, r#"schedule = "every 1s""#);
    let mut daemon = Some(env.spawn(&["daemon", p.to_str().unwrap()], &[]));
    wait_until(&mut daemon, Duration::from_secs(20), "runs on the source's schedule", || sets(&env) >= 2);
    let run = stop(daemon);
    assert_eq!(run.code, 143, "{}", run.all());
}

#[test]
fn status_max_age_fails_when_the_newest_backup_is_too_old_or_missing() {
    let env = Env::new();
    let p = pipeline(&env, "", "");
    let ps = p.to_str().unwrap();
    let none = env.run(&["status", ps, "--max-age", "1h"], &[]);
    assert_eq!(none.code, 1, "no backup yet: {}", none.all());
    assert!(none.stderr.contains("too old: docs → local: there is no backup"), "{}", none.all());
    assert_eq!(env.run(&["run", ps], &[]).code, 0);
    let fresh = env.run(&["status", ps, "--max-age", "1h", "--json"], &[]);
    assert_eq!(fresh.code, 0, "{}", fresh.all());
    let json: serde_json::Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert_eq!(json[0]["too_old"], false, "{json}");
    assert!(json[0]["newest"].as_i64().unwrap() > 0, "{json}");
    std::thread::sleep(Duration::from_millis(2100));
    let stale = env.run(&["status", ps, "--max-age", "1s"], &[]);
    assert_eq!(stale.code, 1, "{}", stale.all());
    assert!(stale.stderr.contains("too old: docs → local: the newest backup is from "), "{}", stale.all());
    let bad = env.run(&["status", ps, "--max-age", "a day"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.contains("--max-age: `a day` is not an interval"), "{}", bad.all());
}

/// The history the daemon keeps is the one `run` keeps: the file is there.
#[test]
fn a_run_records_its_history() {
    let env = Env::new();
    let p = pipeline(&env, "", "");
    assert_eq!(env.run(&["run", p.to_str().unwrap()], &[]).code, 0);
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("cache/runs.json")).unwrap()).unwrap();
    assert_eq!(history["sources"]["docs"]["jobs"]["local"]["outcome"], "ok", "{history}");
}
