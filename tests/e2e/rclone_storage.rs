//! `rclone:REMOTE:path` targets through Debian's rclone, with an rclone
//! configuration whose remote is a real sshd on loopback (rclone's sftp
//! backend): a chain there and back, restored from an empty cache, what an
//! interrupted upload left removed by the next run, and the failures a
//! person meets first: an unknown remote, no rclone program.

use crate::duplicity::interop::noise;
use crate::harness::Env;
use crate::incremental::backup;
use crate::roundtrip::{assert_same_tree, odd_tree};
use std::path::PathBuf;
use test_servers::sshd::Sshd;

fn rclone() -> Option<PathBuf> {
    test_servers::require_program(&["/usr/bin/rclone"], "rclone")
}

/// A pipeline backing up `tree` to `rclone:box:<dir>/remote`, with an
/// rclone configuration for `sshd`, and `storage` lines added.
fn pipeline(env: &Env, sshd: &Sshd, storage: &str) -> PathBuf {
    let conf = format!(
        "[box]\ntype = sftp\nhost = {}\nport = {}\nuser = {}\nkey_file = {}\nknown_hosts_file = {}\nshell_type = unix\n",
        sshd.host(),
        sshd.port(),
        sshd.user(),
        sshd.key().display(),
        sshd.known_hosts().display()
    );
    std::fs::write(env.path("rclone.conf"), conf).unwrap();
    std::fs::write(env.path("pass"), "archive passphrase").unwrap();
    env.pipeline(
        "p.toml",
        &format!(
            r#"
[pipeline]
name = "offsite"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{{dir}}/tree"

[sinks.cloud]
plugin = "duplicity-sink"
target = "rclone:box:{{dir}}/remote"
encryption = "symmetric"
passphrase = {{ file = "{{dir}}/pass" }}
volsize_mb = 1

[sinks.cloud.storage]
config = "rclone.conf"
{storage}
"#
        ),
    )
}

fn names(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.path("remote/docs"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_chain_goes_through_rclone_and_comes_back() {
    let Some(_) = rclone() else { return };
    let Some(sshd) = Sshd::start() else { return };
    let env = Env::new();
    let tree = odd_tree(&env);
    std::fs::rename(&tree, env.path("tree")).unwrap();
    std::fs::write(env.path("tree/big.bin"), noise(3_000_000, 17)).unwrap();
    let p = pipeline(&env, &sshd, "");
    let ps = p.to_str().unwrap();

    let validate = env.run(&["validate", ps], &[]);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(!env.path("remote").exists(), "validate touched the target");

    let full = backup(&env, &p, &[]);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    std::fs::write(env.path("tree/added.txt"), "a new file on the second day\n").unwrap();
    let inc = backup(&env, &p, &[]);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
    let stored = names(&env);
    assert!(stored.iter().any(|n| n.ends_with(".vol3.difftar.gpg")), "{stored:?}");
    assert!(!stored.iter().any(|n| n.starts_with(".orchestrator-")), "temporaries or a lock left: {stored:?}");

    // A new machine: the pipeline file, the rclone configuration and the
    // secrets, no cache.
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    let dest = env.path("restored");
    let run = env.run(&["restore", ps, "--source", "docs", "--to", dest.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_same_tree(&env.path("tree"), &dest);
    let verify = env.run(&["verify", ps], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());

    // What a run killed mid-upload leaves is removed by the next.
    std::fs::write(env.path("remote/docs/.orchestrator-tmp-1-2-duplicity-inc.x.vol1.difftar.gpg"), "half").unwrap();
    std::fs::write(env.path("tree/third.txt"), "third\n").unwrap();
    let run = env.run(&["run", ps], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("removed 1 temporary object"), "{}", run.all());
    assert!(!names(&env).iter().any(|n| n.starts_with(".orchestrator-")), "{:?}", names(&env));
}

#[test]
fn rclone_targets_fail_clearly() {
    let Some(_) = rclone() else { return };
    let Some(sshd) = Sshd::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a.txt"), "a").unwrap();

    // A remote the configuration does not have: rclone's words, the target named.
    let text = std::fs::read_to_string(pipeline(&env, &sshd, "")).unwrap().replace("rclone:box:", "rclone:nobox:");
    let p = env.pipeline("unknown.toml", &text);
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("rclone:nobox:") && run.stdout.contains("nobox"), "{}", run.all());

    // No rclone program where the table says.
    let p = pipeline(&env, &sshd, "program = \"/nonexistent/rclone\"");
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("cannot run /nonexistent/rclone"), "{}", run.all());
}
