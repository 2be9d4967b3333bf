//! `sftp://` targets against a real sshd on loopback: a chain backed up,
//! restored, checked and locked over SFTP with a passphrase-protected key,
//! objects written whole (no temporaries left), nothing contacted by
//! `validate`, and the failures a person meets first: a host key that
//! changed, a plain-text password, a storage key the kind does not take.

use crate::harness::Env;
use crate::incremental::{backup, snapshot};
use crate::roundtrip::{assert_same_tree, odd_tree};
use std::path::{Path, PathBuf};
use test_servers::sshd::{KEY_PASSPHRASE, Sshd};

fn pipeline(env: &Env, sshd: &Sshd, storage: &str) -> PathBuf {
    let text = format!(
        r#"
[pipeline]
name = "offsite"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{{dir}}/tree"

[sinks.box]
plugin = "duplicity-sink"
target = "sftp://{user}@{host}:{port}{{dir}}/remote"
encryption = "symmetric"
passphrase = {{ file = "{{dir}}/pass" }}

[sinks.box.storage]
{storage}
"#,
        user = sshd.user(),
        host = sshd.host(),
        port = sshd.port(),
    );
    env.pipeline("p.toml", &text)
}

fn login(env: &Env, sshd: &Sshd) -> String {
    std::fs::write(env.path("key-pass"), KEY_PASSPHRASE).unwrap();
    format!(
        "key_file = \"{}\"\npassphrase = {{ file = \"{}\" }}\nknown_hosts = \"{}\"",
        sshd.encrypted_key().display(),
        env.path("key-pass").display(),
        sshd.known_hosts().display()
    )
}

fn objects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_chain_goes_to_an_sftp_server_and_comes_back() {
    let Some(sshd) = Sshd::start() else { return };
    let env = Env::new();
    let tree = odd_tree(&env);
    std::fs::rename(&tree, env.path("tree")).unwrap();
    std::fs::write(env.path("pass"), "archive passphrase").unwrap();
    let p = pipeline(&env, &sshd, &login(&env, &sshd));
    let ps = p.to_str().unwrap();

    let validate = env.run(&["validate", ps], &[]);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(!env.path("remote").exists(), "validate touched the target");

    let full = backup(&env, &p, &[]);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    let first = snapshot(&env, &env.path("tree"), "first");
    std::fs::write(env.path("tree/added.txt"), "a new file on the second day\n").unwrap();
    let inc = backup(&env, &p, &[]);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
    assert_eq!(inc["files_read"], 1, "{inc}");

    let place = env.path("remote/docs");
    let names = objects(&place);
    assert!(names.iter().any(|n| n.starts_with("duplicity-full.") && n.ends_with(".vol1.difftar.gpg")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("duplicity-inc.") && n.ends_with(".manifest.gpg")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with(".orchestrator-")), "temporaries or a lock left: {names:?}");

    let status = env.run(&["status", ps, "--json"], &[]);
    assert_eq!(status.code, 0, "{}", status.all());
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status[0]["chains"][0]["sets"].as_array().unwrap().len(), 2, "{status}");

    for (time, to, expected) in
        [(None, "latest", env.path("tree")), (Some(full["set"]["time"].to_string()), "at-full", first)]
    {
        let dest = env.path(to);
        let mut args = vec!["restore", ps, "--source", "docs", "--to", dest.to_str().unwrap()];
        if let Some(t) = &time {
            args.extend(["--time", t]);
        }
        let run = env.run(&args, &[]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert_same_tree(&expected, &dest);
    }
    let verify = env.run(&["verify", ps], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());

    // Another run's live lock on the server fails the job and names it.
    let far = jiff::Timestamp::now().as_second() + 3600;
    let lock = serde_json::json!({"run_id": "their-run", "hostname": "elsewhere", "pid": 4242,
        "pipeline": "offsite", "sink": "box", "acquired_at": far - 3600, "expires_at": far});
    std::fs::write(place.join(".orchestrator-lock"), lock.to_string()).unwrap();
    let before = objects(&place);
    let run = env.run(&["run", ps], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("their-run") && run.stdout.contains("elsewhere"), "{}", run.all());
    assert!(run.stdout.contains(&format!("sftp://{}@127.0.0.1:{}", sshd.user(), sshd.port())), "{}", run.all());
    assert_eq!(objects(&place), before, "a locked target was written to");
}

#[test]
fn sftp_targets_fail_clearly() {
    let Some(sshd) = Sshd::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a.txt"), "a").unwrap();
    std::fs::write(env.path("pass"), "archive passphrase").unwrap();

    // The server's key is not the one known_hosts holds: nothing is sent.
    let changed = format!(
        "key_file = \"{}\"\nknown_hosts = \"{}\"",
        sshd.key().display(),
        sshd.known_hosts_changed_key().display()
    );
    let p = pipeline(&env, &sshd, &changed);
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("HOST KEY MISMATCH"), "{}", run.all());
    assert!(!env.path("remote/docs").exists(), "{}", run.all());

    // A password written into the file, and a key sftp:// does not take.
    let p = pipeline(&env, &sshd, "password = \"hunter2\"\nregion = \"eu\"");
    let run = env.run(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("p.toml:") && run.stderr.contains("sinks.box.storage"), "{}", run.all());
    assert!(run.stderr.contains("`region`"), "{}", run.all());
    assert!(!run.all().contains("hunter2"), "{}", run.all());
    let p = pipeline(&env, &sshd, "password = \"hunter2\"");
    let run = env.run(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("storage.password: must be a secret"), "{}", run.all());
    assert!(!run.all().contains("hunter2"), "{}", run.all());
}

/// Stock duplicity 3.x, over its own SFTP transport (OpenSSH's `sftp`,
/// `pexpect+sftp://`), restores what we wrote to the server, and we restore
/// what it wrote there.
#[test]
fn duplicity_3_and_we_read_each_others_backups_over_sftp() {
    use crate::duplicity::{Duplicity, Encryption, Peer, with_duplicity};
    let Some(sshd) = Sshd::start() else { return };
    with_duplicity(Peer::Pypi3, |dup: &Duplicity| {
        let env = Env::new();
        let enc = Encryption::Symmetric;
        let tree = odd_tree(&env);
        std::fs::rename(&tree, env.path("tree")).unwrap();
        let login =
            format!("key_file = \"{}\"\nknown_hosts = \"{}\"", sshd.key().display(), sshd.known_hosts().display());
        let text = enc.reseal(&std::fs::read_to_string(pipeline(&env, &sshd, &login)).unwrap());
        let p = env.pipeline("ours.toml", &text);
        let run = env.run(&["run", p.to_str().unwrap()], enc.env());
        assert_eq!(run.code, 0, "{}", run.all());

        let ssh_options = format!(
            "--ssh-options=-oIdentityFile={} -oUserKnownHostsFile={} -oStrictHostKeyChecking=yes",
            sshd.key().display(),
            sshd.known_hosts().display()
        );
        let url = |dir: &str| {
            format!("pexpect+sftp://{}@{}:{}/{}", sshd.user(), sshd.host(), sshd.port(), env.path(dir).display())
        };
        let dest = env.path("duplicity-restored");
        let ours = url("remote/docs");
        dup.run_in(&env, enc, &env.path("dup-cache-1"), &["restore", &ssh_options, &ours, dest.to_str().unwrap()], &[]);
        assert_same_tree(&env.path("tree"), &dest);

        let theirs = url("theirs/docs");
        let tree = env.path("tree");
        dup.run_in(&env, enc, &env.path("dup-cache-2"), &["full", &ssh_options, tree.to_str().unwrap(), &theirs], &[]);
        let text = text.replace(
            &format!("{}/remote", env.path("").display().to_string().trim_end_matches('/')),
            &format!("{}/theirs", env.path("").display().to_string().trim_end_matches('/')),
        );
        let p = env.pipeline("theirs.toml", &text);
        let dest = env.path("we-restored");
        let run =
            env.run(&["restore", p.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], enc.env());
        assert_eq!(run.code, 0, "{}", run.all());
        assert_same_tree(&env.path("tree"), &dest);
    });
}
