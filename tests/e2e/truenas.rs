//! The `truenas-dataset` source against the fake TrueNAS of `test-servers`
//! (24.10 REST, 25.04 and 25.10 JSON-RPC) with the duplicity sink: the
//! snapshot is what is backed up, it is always released, leftovers are
//! swept, `keep_snapshots` keeps the newest, errors say what to do; and
//! `access = "sftp"` through a real sshd on loopback.

use crate::harness::{Env, Run};
use crate::roundtrip::assert_same_tree;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use test_servers::truenas::{FakeTrueNas, Generation};

pub(crate) const KEY: &str = "1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ALL: [Generation; 3] = [Generation::V24_10, Generation::V25_04, Generation::V25_10];

pub(crate) const PIPELINE: &str = r#"
[pipeline]
name = "nas"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "truenas-dataset"
api = "{api}"
api_key = { env = "TRUENAS_KEY" }
dataset = "{dataset}"
{extra}

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
"#;

struct Nas {
    server: FakeTrueNas,
    mountpoint: PathBuf,
    _root: tempfile::TempDir,
}

fn nas(generation: Generation) -> Nas {
    let root = tempfile::Builder::new().prefix("fake-truenas-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = FakeTrueNas::start(generation, KEY, root.path());
    let mountpoint = server.add_dataset("tank/data");
    std::fs::create_dir_all(mountpoint.join("docs/deep")).unwrap();
    std::fs::write(mountpoint.join("docs/a.txt"), "first version\n").unwrap();
    std::fs::write(mountpoint.join("docs/deep/b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(mountpoint.join("doomed.txt"), "deleted during the backup").unwrap();
    std::fs::write(mountpoint.join("with space.txt"), "space").unwrap();
    symlink("docs/a.txt", mountpoint.join("link")).unwrap();
    Nas { server, mountpoint, _root: root }
}

/// The pipeline for `nas`, reading it locally (`local_path` = the fake's
/// mountpoint) unless `extra` says otherwise.
fn pipeline(env: &Env, nas: &Nas, extra: &str) -> PathBuf {
    let extra = if extra.contains("access") || extra.contains("local_path") {
        extra.to_owned()
    } else {
        format!("local_path = \"{}\"\n{extra}", nas.mountpoint.display())
    };
    let text =
        PIPELINE.replace("{api}", &nas.server.url()).replace("{dataset}", "tank/data").replace("{extra}", &extra);
    env.pipeline("p.toml", &text)
}

fn run(env: &Env, pipeline: &Path, key: &str) -> Run {
    env.run(&["run", pipeline.to_str().unwrap(), "--json"], &[("TRUENAS_KEY", key)])
}

fn restore(env: &Env, pipeline: &Path, to: &str) -> PathBuf {
    let dest = env.path(to);
    let r = env.run(&["restore", pipeline.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    dest
}

/// After each snapshot: copy it to `expected` (what the backup must hold),
/// then change the live dataset, which must not leak into the backup.
fn change_live_after_snapshot(nas: &Nas, expected: PathBuf) {
    nas.server.after_snapshot(move |_, mountpoint| {
        let snapshots = mountpoint.join(".zfs/snapshot");
        let taken = std::fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().path();
        let _ = std::fs::remove_dir_all(&expected);
        assert!(Command::new("cp").arg("-a").arg(&taken).arg(&expected).status().unwrap().success());
        std::fs::write(mountpoint.join("docs/a.txt"), "CHANGED during the backup\n").unwrap();
        std::fs::write(mountpoint.join("added-during-backup.txt"), "new").unwrap();
        let _ = std::fs::remove_file(mountpoint.join("doomed.txt"));
    });
}

fn assert_released(nas: &Nas) {
    assert!(nas.server.snapshot_ids().is_empty(), "snapshots left: {:?}", nas.server.snapshot_ids());
    let (mut created, mut deleted) = (nas.server.created(), nas.server.deleted());
    created.sort();
    deleted.sort();
    assert_eq!(created, deleted, "every snapshot taken was released");
}

#[test]
fn the_backup_is_the_snapshot_in_every_generation() {
    for generation in ALL {
        let env = Env::new();
        let nas = nas(generation);
        let expected = env.path("expected");
        change_live_after_snapshot(&nas, expected.clone());
        let p = pipeline(&env, &nas, "");
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());

        // Restore equals the snapshot, not the live dataset as it is now.
        let restored = restore(&env, &p, "restored");
        assert_same_tree(&expected, &restored);
        assert_eq!(std::fs::read_to_string(restored.join("docs/a.txt")).unwrap(), "first version\n");
        assert!(restored.join("doomed.txt").exists(), "{generation:?}");
        assert!(!restored.join("added-during-backup.txt").exists(), "{generation:?}");
        assert!(!restored.join(".zfs").exists());
        assert_eq!(std::fs::read_to_string(nas.mountpoint.join("docs/a.txt")).unwrap(), "CHANGED during the backup\n");

        // Released, and named after the source.
        assert_released(&nas);
        let created = nas.server.created();
        assert_eq!(created.len(), 1, "{created:?}");
        assert!(created[0].starts_with("tank/data@orchestrator-docs-"), "{created:?}");

        // Version detection picked the right transport and methods.
        let methods = nas.server.methods();
        let has = |m: &str| methods.iter().any(|c| c == m);
        match generation {
            Generation::V24_10 => {
                assert!(has("GET /api/v2.0/system/version"), "{methods:?}");
                assert!(has("POST /api/v2.0/zfs/snapshot"), "{methods:?}");
                assert!(methods.iter().any(|m| m.starts_with("DELETE /api/v2.0/zfs/snapshot/id/")), "{methods:?}");
                assert!(!methods.iter().any(|m| m.contains('.') && !m.contains('/')), "no JSON-RPC: {methods:?}");
            }
            Generation::V25_04 => {
                for m in ["auth.login_with_api_key", "system.version", "pool.dataset.query", "zfs.snapshot.create"] {
                    assert!(has(m), "{m}: {methods:?}");
                }
                assert!(has("zfs.snapshot.delete") && !has("pool.snapshot.create"), "{methods:?}");
            }
            Generation::V25_10 => {
                for m in
                    ["auth.login_with_api_key", "pool.dataset.query", "pool.snapshot.create", "pool.snapshot.delete"]
                {
                    assert!(has(m), "{m}: {methods:?}");
                }
                assert!(!has("zfs.snapshot.create"), "{methods:?}");
            }
        }
        assert!(nas.server.calls().iter().all(|c| c.ok), "{generation:?}: {:?}", nas.server.calls());
        // The key was sent by the host and never logged.
        assert!(!r.all().contains(KEY), "{}", r.all());

        // A second run is an incremental of the (new) snapshot.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());
        assert_released(&nas);
    }
}

#[test]
fn the_snapshot_is_released_when_the_run_fails() {
    for generation in [Generation::V24_10, Generation::V25_10] {
        let env = Env::new();
        let nas = nas(generation);
        // Once the snapshot is taken, the sink's place in the target turns
        // into a file: the backup fails after the session was opened.
        let place = env.path("backup/docs");
        nas.server.after_snapshot(move |_, _| {
            let _ = std::fs::rename(&place, place.with_extension("moved"));
            std::fs::write(&place, "not a directory").unwrap();
        });
        let p = pipeline(&env, &nas, "");
        let r = run(&env, &p, KEY);
        assert_ne!(r.code, 0, "{generation:?}: {}", r.all());
        assert_eq!(nas.server.created().len(), 1, "{generation:?}: {}", r.all());
        assert_released(&nas);
        assert!(r.stderr.contains("released snapshot"), "{}", r.all());
    }
}

#[test]
fn a_snapshot_that_cannot_be_released_fails_the_job_loudly_and_is_swept_next_run() {
    for generation in [Generation::V24_10, Generation::V25_04] {
        let env = Env::new();
        let nas = nas(generation);
        nas.server.refuse_deletes(true);
        let p = pipeline(&env, &nas, "");
        let r = run(&env, &p, KEY);
        assert_ne!(r.code, 0, "{generation:?}: {}", r.all());
        let id = nas.server.created()[0].clone();
        assert!(r.stderr.contains("ERROR") && r.stderr.contains("could not release snapshot"), "{}", r.all());
        assert!(r.stderr.contains(&id) && r.stderr.contains("dataset is busy"), "{}", r.all());
        assert!(r.stdout.contains("the backup was stored"), "{}", r.all());
        assert_eq!(nas.server.snapshot_ids(), std::slice::from_ref(&id));
        // The backup itself was stored.
        let restored = restore(&env, &p, "restored");
        assert_eq!(std::fs::read_to_string(restored.join("docs/a.txt")).unwrap(), "first version\n");

        nas.server.refuse_deletes(false);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(nas.server.deleted().contains(&id), "the leftover was swept: {:?}", nas.server.deleted());
        assert_released(&nas);
    }
}

#[test]
fn leftovers_are_swept_and_keep_snapshots_keeps_the_newest() {
    let env = Env::new();
    let nas = nas(Generation::V25_10);
    nas.server.create_snapshot("tank/data", "orchestrator-docs-crashed-run");
    nas.server.create_snapshot("tank/data", "manual-before-upgrade");
    nas.server.create_snapshot("tank/data", "orchestrator-other-source-1");
    let p = pipeline(&env, &nas, "");
    let r = run(&env, &p, KEY);
    assert_eq!(r.code, 0, "{}", r.all());
    // Ours (the crashed run's and this run's) are gone; others' are not.
    assert_eq!(nas.server.snapshot_ids(), ["tank/data@manual-before-upgrade", "tank/data@orchestrator-other-source-1"]);
    assert!(nas.server.deleted().contains(&"tank/data@orchestrator-docs-crashed-run".to_owned()));

    let p = pipeline(&env, &nas, "keep_snapshots = 2");
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let ours: Vec<String> =
        nas.server.snapshot_ids().into_iter().filter(|id| id.starts_with("tank/data@orchestrator-docs-")).collect();
    let created = nas.server.created();
    let mut newest: Vec<String> = created[created.len() - 2..].to_vec();
    newest.sort();
    assert_eq!(ours, newest, "the two newest are kept");
    assert_eq!(nas.server.snapshot_ids().len(), 4, "{:?}", nas.server.snapshot_ids());
}

#[test]
fn api_user_logs_in_with_login_ex_and_a_wrong_user_is_named() {
    let env = Env::new();
    let nas = nas(Generation::V25_10);
    let user = test_servers::truenas::API_KEY_USER;
    let p = pipeline(&env, &nas, &format!("api_user = \"{user}\""));
    let r = run(&env, &p, KEY);
    assert_eq!(r.code, 0, "{}", r.all());
    let methods = nas.server.methods();
    assert!(methods.iter().any(|m| m == "auth.login_ex"), "{methods:?}");
    assert!(!methods.iter().any(|m| m == "auth.login_with_api_key"), "{methods:?}");
    assert_released(&nas);

    let p = pipeline(&env, &nas, "api_user = \"someone-else\"");
    let r = run(&env, &p, KEY);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("\"someone-else\"") && r.stderr.contains("is it this user's key?"), "{}", r.all());
    assert!(!r.all().contains(KEY), "{}", r.all());
}

#[test]
fn wrong_key_missing_dataset_and_unreachable_nas_say_what_to_do() {
    for generation in [Generation::V24_10, Generation::V25_04] {
        let env = Env::new();
        let nas = nas(generation);
        let p = pipeline(&env, &nas, "");
        let wrong = "9-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let r = run(&env, &p, wrong);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(
            r.stderr.contains("refused the API key") && r.stderr.contains("api_key"),
            "{generation:?}: {}",
            r.all()
        );
        assert!(!r.all().contains(wrong), "{}", r.all());

        let text = PIPELINE
            .replace("{api}", &nas.server.url())
            .replace("{dataset}", "tank/nope")
            .replace("{extra}", &format!("local_path = \"{}\"", nas.mountpoint.display()));
        let p = env.pipeline("missing.toml", &text);
        let r = run(&env, &p, KEY);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.stderr.contains("has no dataset") && r.stderr.contains("check the dataset name"), "{}", r.all());
        assert!(r.stderr.contains("tank/nope"), "{}", r.all());
        assert!(nas.server.created().is_empty());
    }

    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = PIPELINE
        .replace("{api}", &format!("http://127.0.0.1:{port}"))
        .replace("{dataset}", "tank/data")
        .replace("{extra}", "local_path = \"/nonexistent\"");
    let p = env.pipeline("p.toml", &text);
    let r = run(&env, &p, KEY);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("cannot reach") && r.stderr.contains(&format!("127.0.0.1:{port}")), "{}", r.all());
}

#[test]
fn an_unreachable_snapshot_directory_explains_the_container_fix() {
    let env = Env::new();
    let nas = nas(Generation::V25_10);
    // Mounted "here" without its .zfs directory, as a container may see it.
    let elsewhere = env.path("mounted-without-zfs");
    std::fs::create_dir(&elsewhere).unwrap();
    let p = pipeline(&env, &nas, &format!("local_path = \"{}\"", elsewhere.display()));
    let r = run(&env, &p, KEY);
    assert_ne!(r.code, 0, "{}", r.all());
    let all = r.all();
    assert!(all.contains(".zfs/snapshot") && all.contains("not reachable"), "{all}");
    assert!(all.contains("bind-propagation=rshared") && all.contains("or use access = "), "{all}");
    assert_released(&nas);
}

#[test]
fn sftp_access_reads_the_snapshot_over_ssh() {
    let Some(sshd) = test_servers::sshd::Sshd::start() else { return };
    for generation in [Generation::V24_10, Generation::V25_10] {
        let env = Env::new();
        let nas = nas(generation);
        let expected = env.path("expected");
        change_live_after_snapshot(&nas, expected.clone());
        let extra = format!(
            "access = \"sftp\"\nssh_user = \"{}\"\nssh_key = \"{}\"\nknown_hosts = \"{}\"\nssh_address = \"127.0.0.1:{}\"",
            sshd.user(),
            sshd.key().display(),
            sshd.known_hosts().display(),
            sshd.port()
        );
        let p = pipeline(&env, &nas, &extra);
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());
        let restored = restore(&env, &p, "restored");
        // (mtimes are compared in whole seconds, all SFTP v3 carries)
        assert_same_tree(&expected, &restored);
        assert_eq!(std::fs::read_to_string(restored.join("docs/a.txt")).unwrap(), "first version\n");
        assert!(!restored.join("added-during-backup.txt").exists());
        assert_released(&nas);
        assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());

        // A known_hosts without the NAS's key: refused with the fingerprint
        // and the line to run, and the snapshot is still released.
        let unknown = extra.replace(
            &sshd.known_hosts().display().to_string(),
            &sshd.known_hosts_without_this_host().display().to_string(),
        );
        let p = pipeline(&env, &nas, &unknown);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = run(&env, &p, KEY);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.all().contains("unknown host") && r.all().contains("ssh-keyscan"), "{}", r.all());
        assert!(r.all().contains(&sshd.host_key_fingerprint()), "{}", r.all());
        assert_released(&nas);
    }
}

#[test]
fn https_with_a_pinned_certificate_or_a_ca_file() {
    for (generation, pin) in [(Generation::V25_10, true), (Generation::V24_10, false)] {
        let env = Env::new();
        let root = tempfile::Builder::new().prefix("fake-truenas-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let server = FakeTrueNas::start_tls(generation, KEY, root.path());
        let mountpoint = server.add_dataset("tank/data");
        std::fs::write(mountpoint.join("a.txt"), "over https").unwrap();
        let trust = if pin {
            format!("tls_fingerprint = \"{}\"", server.cert_fingerprint().unwrap())
        } else {
            format!("ca_file = \"{}\"", server.ca_file().unwrap().display())
        };
        let text = PIPELINE
            .replace("{api}", &server.url())
            .replace("{dataset}", "tank/data")
            .replace("{extra}", &format!("local_path = \"{}\"\n{trust}", mountpoint.display()));
        let p = env.pipeline("p.toml", &text);
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());
        let restored = restore(&env, &p, "restored");
        assert_eq!(std::fs::read_to_string(restored.join("a.txt")).unwrap(), "over https");
        assert!(server.snapshot_ids().is_empty());

        // Without the pin or the CA the certificate is not trusted, and the
        // error shows its fingerprint; nothing was snapshotted.
        let text = PIPELINE
            .replace("{api}", &server.url())
            .replace("{dataset}", "tank/data")
            .replace("{extra}", &format!("local_path = \"{}\"", mountpoint.display()));
        let p = env.pipeline("untrusted.toml", &text);
        let r = run(&env, &p, KEY);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.all().contains("not trusted") && r.all().contains(server.cert_fingerprint().unwrap()), "{}", r.all());
        assert_eq!(server.created().len(), 1, "{:?}", server.created());
    }
}

#[test]
fn without_local_path_the_mountpoint_must_be_allowed() {
    let env = Env::new();
    let nas = nas(Generation::V25_10);
    let p = pipeline(&env, &nas, "access = \"local\"");
    let r = env.run(&["validate", p.to_str().unwrap()], &[("TRUENAS_KEY", KEY)]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("allow.read = [\\\"/mnt/tank/data\\\"]")
            || r.all().contains("allow.read = [\"/mnt/tank/data\"]"),
        "{}",
        r.all()
    );
}

/// `nas` with child datasets: `photos` (mode 0750) with a grandchild
/// `photos/raw`, `scratch` mounted outside the parent's mountpoint, and
/// `off`, not mounted.
fn nas_with_children(generation: Generation) -> Nas {
    let nas = nas(generation);
    let photos = nas.server.add_dataset("tank/data/photos");
    std::fs::create_dir_all(photos.join("2026")).unwrap();
    std::fs::write(photos.join("p1.jpg"), "photo one").unwrap();
    std::fs::write(photos.join("2026/p2.jpg"), vec![9u8; 200_000]).unwrap();
    std::fs::set_permissions(&photos, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let raw = nas.server.add_dataset("tank/data/photos/raw");
    std::fs::write(raw.join("r.dng"), "raw data").unwrap();
    let scratch = nas.server.add_dataset_at("tank/data/scratch", &nas._root.path().join("scratch-elsewhere"));
    std::fs::write(scratch.join("s.txt"), "mounted elsewhere").unwrap();
    nas.server.add_unmounted_dataset("tank/data/off", false);
    nas
}

/// After the snapshot: what a recursive backup must hold (the parent's
/// snapshot with each child's grafted where it is mounted) into `expected`,
/// then changes to the live children, which must not leak.
fn expect_grafted_and_change_children(nas: &Nas, expected: PathBuf) {
    nas.server.after_snapshot(move |_, mountpoint| {
        let taken = std::fs::read_dir(mountpoint.join(".zfs/snapshot")).unwrap().next().unwrap().unwrap();
        let name = taken.file_name();
        let _ = std::fs::remove_dir_all(&expected);
        let cp = |from: &Path, to: &Path| {
            assert!(Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success(), "{from:?}");
        };
        cp(&taken.path(), &expected);
        // Shallowest first; `dir/.` copies into the empty mountpoint and
        // gives it the child snapshot root's mode and mtime.
        for child in ["photos", "photos/raw"] {
            cp(&mountpoint.join(child).join(".zfs/snapshot").join(&name).join("."), &expected.join(child));
        }
        std::fs::write(mountpoint.join("photos/p1.jpg"), "CHANGED after the snapshot").unwrap();
        std::fs::write(mountpoint.join("photos/raw/added.dng"), "new").unwrap();
    });
}

fn warnings(r: &Run) -> u64 {
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    report["jobs"][0]["warnings"].as_u64().unwrap()
}

#[test]
fn recursive_backs_up_the_child_datasets_where_they_are_mounted() {
    for generation in ALL {
        let env = Env::new();
        let nas = nas_with_children(generation);
        let expected = env.path("expected");
        expect_grafted_and_change_children(&nas, expected.clone());
        let p = pipeline(&env, &nas, "recursive = true");
        let r = run(&env, &p, KEY);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());

        let restored = restore(&env, &p, "restored");
        assert_same_tree(&expected, &restored);
        assert_eq!(std::fs::read_to_string(restored.join("photos/p1.jpg")).unwrap(), "photo one");
        assert_eq!(std::fs::read_to_string(restored.join("photos/raw/r.dng")).unwrap(), "raw data");
        assert!(!restored.join("photos/raw/added.dng").exists(), "{generation:?}: a later change leaked");
        assert!(!restored.join("photos/.zfs").exists());
        assert_eq!(std::fs::symlink_metadata(restored.join("photos")).unwrap().mode() & 0o7777, 0o750);

        // The children that cannot be read are named, as warnings.
        assert!(r.stderr.contains("tank/data/scratch") && r.stderr.contains("not inside"), "{}", r.all());
        assert!(r.stderr.contains("tank/data/off") && r.stderr.contains("not mounted"), "{}", r.all());
        assert!(warnings(&r) >= 2, "{}", r.all());

        // The children's snapshots went with the parent's.
        let created = nas.server.created();
        assert!(created.iter().any(|id| id.starts_with("tank/data/photos/raw@orchestrator-docs-")), "{created:?}");
        assert_released(&nas);
    }
}

#[test]
fn without_recursive_child_mountpoints_are_empty_directories() {
    let env = Env::new();
    let nas = nas_with_children(Generation::V25_04);
    let p = pipeline(&env, &nas, "");
    let r = run(&env, &p, KEY);
    assert_eq!(r.code, 0, "{}", r.all());
    let restored = restore(&env, &p, "restored");
    assert_eq!(std::fs::read_dir(restored.join("photos")).unwrap().count(), 0, "what ZFS shows of a child");
    assert_eq!(std::fs::read_to_string(restored.join("docs/a.txt")).unwrap(), "first version\n");
    assert_eq!(warnings(&r), 0, "{}", r.all());
    assert!(!nas.server.methods().iter().any(|m| m.contains("pool/dataset?")), "{:?}", nas.server.methods());
    assert_eq!(nas.server.created().len(), 1);
    assert_released(&nas);
}

#[test]
fn an_unreachable_child_snapshot_fails_the_run_naming_the_child() {
    let env = Env::new();
    let nas = nas_with_children(Generation::V25_10);
    nas.server.after_snapshot(|_, mountpoint| {
        // As a child's snapdir automount failing in a container.
        let snapshots = mountpoint.join("photos/raw/.zfs/snapshot");
        for taken in std::fs::read_dir(&snapshots).unwrap() {
            std::fs::remove_dir_all(taken.unwrap().path()).unwrap();
        }
    });
    let p = pipeline(&env, &nas, "recursive = true");
    let r = run(&env, &p, KEY);
    assert_ne!(r.code, 0, "{}", r.all());
    let all = r.all();
    assert!(all.contains("not reachable") && all.contains("tank/data/photos/raw"), "{all}");
    assert!(all.contains("photos/raw/.zfs/snapshot") && all.contains("bind-propagation=rshared"), "{all}");
    assert_released(&nas);
}

/// `access = "sftp"` settings for `sshd`, with `key` and `extra` lines.
fn sftp_extra(sshd: &test_servers::sshd::Sshd, key: &Path, extra: &str) -> String {
    format!(
        "access = \"sftp\"\nssh_user = \"{}\"\nssh_key = \"{}\"\nknown_hosts = \"{}\"\nssh_address = \"127.0.0.1:{}\"\n{extra}",
        sshd.user(),
        key.display(),
        sshd.known_hosts().display(),
        sshd.port()
    )
}

#[test]
fn recursive_over_sftp_with_a_passphrase_protected_key() {
    let Some(sshd) = test_servers::sshd::Sshd::start() else { return };
    for generation in [Generation::V24_10, Generation::V25_10] {
        let env = Env::new();
        let nas = nas_with_children(generation);
        let expected = env.path("expected");
        expect_grafted_and_change_children(&nas, expected.clone());
        let extra = sftp_extra(
            &sshd,
            &sshd.encrypted_key(),
            "recursive = true\nssh_key_passphrase = { env = \"SSH_KEY_PASSPHRASE\" }",
        );
        let p = pipeline(&env, &nas, &extra);
        let passphrase = test_servers::sshd::KEY_PASSPHRASE;
        let r = env
            .run(&["run", p.to_str().unwrap(), "--json"], &[("TRUENAS_KEY", KEY), ("SSH_KEY_PASSPHRASE", passphrase)]);
        assert_eq!(r.code, 0, "{generation:?}: {}", r.all());
        assert!(!r.all().contains(passphrase), "{}", r.all());
        let restored = restore(&env, &p, "restored");
        assert_same_tree(&expected, &restored);
        assert_eq!(std::fs::read_to_string(restored.join("photos/raw/r.dng")).unwrap(), "raw data");
        assert!(r.stderr.contains("tank/data/scratch"), "{}", r.all());
        assert_released(&nas);

        // A wrong passphrase is refused (and the snapshot still released).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = env.run(
            &["run", p.to_str().unwrap(), "--json"],
            &[("TRUENAS_KEY", KEY), ("SSH_KEY_PASSPHRASE", "not the passphrase")],
        );
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.all().contains("wrong or missing passphrase"), "{}", r.all());
        assert!(!r.all().contains("not the passphrase"), "{}", r.all());
        assert_released(&nas);
    }
}
