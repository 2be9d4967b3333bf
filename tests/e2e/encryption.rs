//! Encrypted chains. The host seals and opens OpenPGP; the sink never holds a
//! key. Stock duplicity restores our symmetric and public-key chains at every
//! point in time; we restore duplicity's gpg chains written with every
//! compression gpg offers; a wrong key fails the job, names the problem,
//! never shows a secret and leaves the chain as it was.

use crate::harness::{Env, Run};
use crate::incremental::{change_once, change_twice, snapshot};
use crate::roundtrip::{assert_same_tree, odd_tree};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery staple";
const KEY_PASSPHRASE: &str = "key pass phrase";

const SYMMETRIC: &str = r#"
[pipeline]
name = "sealed"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "symmetric"
passphrase = { env = "BACKUP_PASSPHRASE" }
volsize_mb = 1
"#;

const PUBLIC_KEY: &str = r#"
[pipeline]
name = "sealed"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "public-key"
recipients = ["keys/backup.pub.asc"]
secret_key = { file = "{dir}/keys/backup.sec.asc" }
passphrase = { env = "KEY_PASSPHRASE" }
volsize_mb = 1
"#;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `gpg` and Debian's `duplicity`, or a skip outside CI.
fn tools() -> bool {
    let found = |p: &str| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    let ok = found("gpg") && found("duplicity");
    if !ok && in_ci() {
        panic!("gpg or duplicity is missing; scripts/test.sh installs them (apt-get install duplicity gnupg)");
    }
    if !ok {
        eprintln!("SKIPPED: gpg or duplicity is not installed (run scripts/test.sh)");
    }
    ok
}

/// A private GnuPG home inside the test's directory.
fn gnupg_home(env: &Env) -> PathBuf {
    let home = env.path("gnupg");
    if !home.exists() {
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    home
}

fn gpg(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = Command::new("gpg")
        .env("GNUPGHOME", gnupg_home(env))
        .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A Curve25519 key pair protected by KEY_PASSPHRASE, exported where the
/// PUBLIC_KEY pipeline expects it; returns its fingerprint.
fn make_key(env: &Env) -> String {
    let uid = "Backups <backups@example.invalid>";
    gpg(env, &["--passphrase", KEY_PASSPHRASE, "--quick-gen-key", uid, "future-default", "default", "never"]);
    std::fs::create_dir_all(env.path("keys")).unwrap();
    std::fs::write(env.path("keys/backup.pub.asc"), gpg(env, &["--armor", "--export", uid])).unwrap();
    let secret = gpg(env, &["--passphrase", KEY_PASSPHRASE, "--armor", "--export-secret-keys", uid]);
    std::fs::write(env.path("keys/backup.sec.asc"), secret).unwrap();
    let listing = String::from_utf8(gpg(env, &["--with-colons", "--list-keys", uid])).unwrap();
    listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string()
}

fn run(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Run {
    env.run(args, envs)
}

/// A backup that must succeed; returns the job's report.
fn backup(env: &Env, pipeline: &Path, envs: &[(&str, &str)]) -> serde_json::Value {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = run(env, &["run", pipeline.to_str().unwrap(), "--json"], envs);
    assert_eq!(r.code, 0, "{}", r.all());
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    report["jobs"][0].clone()
}

fn restore(env: &Env, pipeline: &Path, time: i64, to: &str, envs: &[(&str, &str)]) -> (Run, PathBuf) {
    let dest = env.path(to);
    let t = time.to_string();
    let args =
        ["restore", pipeline.to_str().unwrap(), "--source", "docs", "--time", &t, "--to", dest.to_str().unwrap()];
    (run(env, &args, envs), dest)
}

/// duplicity's own time syntax for a set time.
fn w3(time: i64) -> String {
    let out = Command::new("date").args(["-u", "-d", &format!("@{time}"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Stock duplicity with a fresh, empty cache each time.
fn duplicity(env: &Env, args: &[&str], passphrase: &str) -> std::process::Output {
    let cache = tempfile::tempdir_in(env.dir.path()).unwrap();
    let out = Command::new("duplicity")
        .args(args)
        .arg("--archive-dir")
        .arg(cache.path())
        .env("PASSPHRASE", passphrase)
        .env("GNUPGHOME", gnupg_home(env))
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

fn objects(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

fn url(env: &Env) -> String {
    format!("file://{}", env.path("backup/docs").display())
}

#[test]
fn duplicity_restores_our_symmetric_chain_at_every_time() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", SYMMETRIC);
    let key = [("BACKUP_PASSPHRASE", PASSPHRASE)];

    let full = backup(&env, &p, &key);
    let s0 = snapshot(&env, &root, "s0");
    change_once(&root);
    let inc1 = backup(&env, &p, &key);
    assert_eq!(inc1["set"]["kind"], "incremental", "{inc1}");
    let s1 = snapshot(&env, &root, "s1");
    // Without the cache the next incremental reads and decrypts the chain's
    // signatures from the target.
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    change_twice(&root);
    let inc2 = backup(&env, &p, &key);
    assert_eq!(inc2["set"]["kind"], "incremental", "{inc2}");
    let s2 = snapshot(&env, &root, "s2");

    // Everything stored is OpenPGP; no file name or content shows through.
    for (name, _) in objects(&env.path("backup/docs")) {
        assert!(name.ends_with(".gpg"), "{name}");
        let bytes = std::fs::read(env.path("backup/docs").join(&name)).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"plain.txt"), "{name} shows a file name");
        assert!(bytes[0] == 0x8c || bytes[0] == 0xc3, "{name} does not start with an SKESK packet");
    }

    for (i, (set, snap)) in [(&full, &s0), (&inc1, &s1), (&inc2, &s2)].into_iter().enumerate() {
        let t = set["set"]["time"].as_i64().unwrap();
        let (r, ours) = restore(&env, &p, t, &format!("ours{i}"), &key);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_same_tree(snap, &ours);
        let theirs = env.path(&format!("theirs{i}"));
        duplicity(&env, &["restore", "-t", &w3(t), &url(&env), theirs.to_str().unwrap()], PASSPHRASE);
        assert_same_tree(snap, &theirs);
    }
    let status = duplicity(&env, &["collection-status", &url(&env)], PASSPHRASE);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("Number of contained backup sets: 3"), "{status}");
    assert!(status.contains("No orphaned or incomplete backup sets found."), "{status}");
    duplicity(&env, &["verify", "--compare-data", &url(&env), root.to_str().unwrap()], PASSPHRASE);
    let v = run(&env, &["verify", p.to_str().unwrap()], &key);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn a_wrong_passphrase_fails_clearly_and_changes_nothing() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", SYMMETRIC);
    let full = backup(&env, &p, &[("BACKUP_PASSPHRASE", PASSPHRASE)]);
    let before = objects(&env.path("backup/docs"));
    change_once(&root);
    let wrong = "not the passphrase";

    // With the cache (which is plain) and without it, the key is checked
    // against the chain before anything is written.
    for drop_cache in [false, true] {
        if drop_cache {
            std::fs::remove_dir_all(env.path("cache")).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = run(&env, &["run", p.to_str().unwrap()], &[("BACKUP_PASSPHRASE", wrong)]);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.all().contains("does not open the current chain"), "{}", r.all());
        assert!(r.all().contains("--full"), "the message says how to go on: {}", r.all());
        assert!(!r.all().contains(wrong) && !r.all().contains(PASSPHRASE), "a secret leaked: {}", r.all());
        assert_eq!(objects(&env.path("backup/docs")), before, "the failed run changed the target");
    }

    let (r, dest) = restore(&env, &p, full["set"]["time"].as_i64().unwrap(), "r", &[("BACKUP_PASSPHRASE", wrong)]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("cannot decrypt"), "{}", r.all());
    assert!(!r.all().contains(wrong), "{}", r.all());
    assert!(std::fs::read_dir(&dest).map(|d| d.count() == 0).unwrap_or(true), "a wrong key restored something");

    // A damaged volume is named on verify; the good key still reads the rest.
    let vol = before.iter().find(|(n, _)| n.contains(".vol2.")).unwrap().0.clone();
    let path = env.path("backup/docs").join(&vol);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let v = run(&env, &["verify", p.to_str().unwrap()], &[("BACKUP_PASSPHRASE", PASSPHRASE)]);
    assert_ne!(v.code, 0, "{}", v.all());
    assert!(v.all().contains(&vol), "verify does not name the damaged volume: {}", v.all());
}

#[test]
fn public_key_chains_round_trip_with_duplicity() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let fingerprint = make_key(&env);
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", PUBLIC_KEY);
    let key = [("KEY_PASSPHRASE", KEY_PASSPHRASE)];

    let full = backup(&env, &p, &key);
    let s0 = snapshot(&env, &root, "s0");
    // The secret key lets an incremental go on without the cache.
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    change_once(&root);
    let inc = backup(&env, &p, &key);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
    let s1 = snapshot(&env, &root, "s1");

    let manifest = objects(&env.path("backup/docs")).into_iter().find(|(n, _)| n.contains(".manifest.")).unwrap().0;
    let manifest = env.path("backup/docs").join(manifest);
    let packets = gpg(&env, &["--list-packets", "--passphrase", KEY_PASSPHRASE, manifest.to_str().unwrap()]);
    let packets = String::from_utf8_lossy(&packets);
    assert!(packets.contains("pubkey enc packet: version 3"), "{packets}");
    assert!(!packets.contains("symkey enc packet"), "{packets}");

    for (i, (set, snap)) in [(&full, &s0), (&inc, &s1)].into_iter().enumerate() {
        let t = set["set"]["time"].as_i64().unwrap();
        let (r, ours) = restore(&env, &p, t, &format!("ours{i}"), &key);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_same_tree(snap, &ours);
        let theirs = env.path(&format!("theirs{i}"));
        duplicity(&env, &["restore", "-t", &w3(t), &url(&env), theirs.to_str().unwrap()], KEY_PASSPHRASE);
        assert_same_tree(snap, &theirs);
    }

    // duplicity appends to our public-key chain; we restore its incremental.
    std::fs::write(root.join("written by duplicity"), "hello").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    duplicity(
        &env,
        &["incremental", "--encrypt-key", &fingerprint, root.to_str().unwrap(), &url(&env)],
        KEY_PASSPHRASE,
    );
    let s2 = snapshot(&env, &root, "s2");
    let dest = env.path("ours-after-duplicity");
    let r = run(&env, &["restore", p.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_same_tree(&s2, &dest);

    // Without the secret key a backup still runs (from the cache), and a
    // restore says what it needs.
    let no_secret = PUBLIC_KEY.replace("secret_key = { file = \"{dir}/keys/backup.sec.asc\" }\n", "");
    let p2 = env.pipeline("p2.toml", &no_secret);
    let dest = env.path("no-secret");
    let r = run(&env, &["restore", p2.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &key);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("secret_key"), "{}", r.all());
}

#[test]
fn we_restore_duplicitys_gpg_chains_with_every_compression() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", SYMMETRIC);
    let key = [("BACKUP_PASSPHRASE", PASSPHRASE)];
    for algo in ["zip", "zlib", "bzip2"] {
        let _ = std::fs::remove_dir_all(env.path("backup"));
        let _ = std::fs::remove_dir_all(env.path("cache"));
        let gpg_options = format!("--compress-algo={algo}");
        let args = |kind: &'static str| {
            vec![
                kind.to_string(),
                "--volsize".into(),
                "1".into(),
                format!("--gpg-options={gpg_options}"),
                root.display().to_string(),
                url(&env),
            ]
        };
        let full: Vec<String> = args("full");
        duplicity(&env, &full.iter().map(String::as_str).collect::<Vec<_>>(), PASSPHRASE);
        let s0 = snapshot(&env, &root, &format!("{algo}-s0"));
        let t0 = newest_set_time(&env);
        std::fs::write(root.join(format!("{algo}.txt")), algo).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let inc: Vec<String> = args("incremental");
        duplicity(&env, &inc.iter().map(String::as_str).collect::<Vec<_>>(), PASSPHRASE);
        let s1 = snapshot(&env, &root, &format!("{algo}-s1"));
        let t1 = newest_set_time(&env);

        let (r, dest) = restore(&env, &p, t0, &format!("{algo}-r0"), &key);
        assert_eq!(r.code, 0, "{algo}: {}", r.all());
        assert_same_tree(&s0, &dest);
        let (r, dest) = restore(&env, &p, t1, &format!("{algo}-r1"), &key);
        assert_eq!(r.code, 0, "{algo}: {}", r.all());
        assert_same_tree(&s1, &dest);
        let v = run(&env, &["verify", p.to_str().unwrap()], &key);
        assert_eq!(v.code, 0, "{algo}: {}", v.all());
    }
}

/// The end time of the newest set in the target, from our `status`.
fn newest_set_time(env: &Env) -> i64 {
    let names = objects(&env.path("backup/docs"));
    let stamp = names
        .iter()
        .filter(|(n, _)| n.contains(".manifest."))
        .map(|(n, _)| n.split('.').rev().nth(2).unwrap().to_string())
        .max()
        .unwrap();
    let iso = format!(
        "{}-{}-{} {}:{}:{}",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    let out = Command::new("date").args(["-u", "-d", &iso, "+%s"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}
