//! A system zoneinfo directory that lacks a zone must not hide jiff's
//! bundled copy. jiff picks one database for the process (`TZDIR` or
//! /usr/share/zoneinfo when it holds any zone, else the bundle), so this
//! runs in a child process whose `TZDIR` holds only `UTC`.

use std::process::Command;

use orchestrator_schedule::{system_time_zone, time_zone};

const CHILD: &str = "ORCHESTRATOR_SCHEDULE_TEST_CHILD";
const NAME: &str = "a_partial_system_database_does_not_hide_the_bundle";

#[test]
fn a_partial_system_database_does_not_hide_the_bundle() {
    if std::env::var_os(CHILD).is_some() {
        // jiff settled on the one-zone directory for everything...
        assert!(jiff::tz::db().get("Europe/Madrid").is_err(), "{:?}", jiff::tz::db());
        // ...and we still find zones, and a `TZ` naming one.
        assert_eq!(time_zone("Europe/Madrid").unwrap().iana_name(), Some("Europe/Madrid"));
        assert_eq!(system_time_zone().iana_name(), Some("America/Santiago"));
        return;
    }
    let Ok(utc) = std::fs::read("/usr/share/zoneinfo/UTC") else {
        eprintln!("no /usr/share/zoneinfo/UTC to build a partial database from: skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("orchestrator-schedule-tzdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("UTC"), utc).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture"])
        .env(CHILD, "1")
        .env("TZDIR", &dir)
        .env("TZ", "America/Santiago")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{stderr}");
}
