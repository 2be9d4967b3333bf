//! Interop with stock duplicity (Debian's 0.8.22, installed by
//! `scripts/test.sh`): it restores, lists and verifies what our sink wrote,
//! and our sink restores what it wrote. Unencrypted, uncompressed archives for
//! now; encryption and incrementals come with the rest of the sink.

use crate::harness::Env;
use crate::roundtrip::{assert_same_tree, odd_tree, walk};
use std::path::Path;
use std::process::Command;

/// Stock duplicity, or a skip outside CI. Under `CI=true` a missing duplicity
/// fails the test.
fn duplicity() -> Option<&'static str> {
    let found = Command::new("duplicity").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("duplicity is not installed; scripts/test.sh installs it (apt-get install duplicity)");
    }
    if !found {
        eprintln!("SKIPPED: duplicity is not installed (run scripts/test.sh, which installs it)");
    }
    found.then_some("duplicity")
}

fn run_duplicity(env: &Env, args: &[&str]) -> std::process::Output {
    let out = Command::new("duplicity")
        .args(args)
        .args(["--no-encryption", "--archive-dir"])
        .arg(env.path("duplicity-cache"))
        .env_remove("PASSPHRASE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duplicity {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const PIPELINE: &str = r#"
[pipeline]
name = "interop"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
volsize_mb = 1
"#;

#[test]
fn duplicity_restores_lists_and_verifies_our_full_backup() {
    if duplicity().is_none() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", PIPELINE);
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(report["jobs"][0]["set"]["volumes"].as_u64().unwrap() >= 3, "big.bin spans volumes: {}", run.stdout);

    let url = format!("file://{}", env.path("backup/docs").display());
    let restored = env.path("restored-by-duplicity");
    run_duplicity(&env, &["restore", &url, restored.to_str().unwrap()]);
    assert_same_tree(&root, &restored);

    let listed = run_duplicity(&env, &["list-current-files", &url]);
    let lines =
        String::from_utf8_lossy(&listed.stdout).lines().filter(|l| l.len() > 25 && l.as_bytes()[3] == b' ').count();
    assert_eq!(lines, walk(&root).len(), "{}", String::from_utf8_lossy(&listed.stdout));

    let status = run_duplicity(&env, &["collection-status", &url]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("Number of contained backup sets: 1"), "{status}");
    assert!(status.contains("No orphaned or incomplete backup sets found."), "{status}");

    run_duplicity(&env, &["verify", "--compare-data", &url, root.to_str().unwrap()]);

    // Our own restore, status and verify of the same archive.
    let ours = env.path("restored-by-us");
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "docs", "--to", ours.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_same_tree(&root, &ours);
    let v = env.run(&["verify", p.to_str().unwrap()], &[]);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn we_restore_a_chain_duplicity_wrote() {
    if duplicity().is_none() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let url = format!("file://{}", env.path("backup/docs").display());
    run_duplicity(&env, &["full", "--no-compression", "--volsize", "1", root.to_str().unwrap(), &url]);
    assert!(std::fs::read_dir(env.path("backup/docs")).unwrap().count() >= 4, "expected several volumes");

    let p = env.pipeline("p.toml", PIPELINE);
    let out = env.path("restored");
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "docs", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_same_tree(&root, &out);
    let list = env.run(&["list", p.to_str().unwrap(), "--source", "docs", "--json"], &[]);
    let entries: serde_json::Value =
        serde_json::from_str(&list.stdout).unwrap_or_else(|e| panic!("{e}: {}", list.all()));
    assert_eq!(entries.as_array().unwrap().len(), walk(&root).len(), "{}", list.all());
    assert!(Path::new(&out).join("big.bin").exists());
}

#[test]
fn we_restore_duplicitys_default_gzip_chain_and_write_gzip_ourselves() {
    if duplicity().is_none() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let url = format!("file://{}", env.path("backup/docs").display());
    run_duplicity(&env, &["full", "--volsize", "1", root.to_str().unwrap(), &url]);
    let names: Vec<String> = std::fs::read_dir(env.path("backup/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".difftar.gz")), "{names:?}");

    let p = env.pipeline("p.toml", PIPELINE);
    let out = env.path("restored");
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "docs", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_same_tree(&root, &out);

    // Our own sets are gzip too, with manifests left plain, as duplicity writes them.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let ours: Vec<String> = std::fs::read_dir(env.path("backup/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // Nothing changed, so our run appends an (empty) incremental to
    // duplicity's chain, using duplicity's signatures.
    assert!(ours.iter().any(|n| n.starts_with("duplicity-inc.") && n.ends_with(".vol1.difftar.gz")), "{ours:?}");
    assert!(ours.iter().all(|n| !n.contains("manifest.gz")), "{ours:?}");
    let status = run_duplicity(&env, &["collection-status", &url]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("Number of contained backup sets: 2"));
}
