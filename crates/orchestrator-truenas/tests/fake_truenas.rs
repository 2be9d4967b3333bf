//! orchestrator-truenas against the fake TrueNAS of `test-servers`, one per
//! generation, over real loopback sockets.

use std::fs;
use std::path::Path;
use std::time::Duration;

use orchestrator_truenas::{
    Api, ErrorKind, Mount, NativeTransport, Secret, SnapshotMethods, Timeouts, TlsConfig, TrueNas, TrueNasConfig,
    TrueNasError,
};
use test_servers::truenas::{API_KEY_USER, FakeTrueNas, Generation, Transport};

const KEY: &str = "2-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const ALL: [Generation; 3] = [Generation::V24_10, Generation::V25_04, Generation::V25_10];

struct Nas {
    server: FakeTrueNas,
    mountpoint: std::path::PathBuf,
    _root: tempfile::TempDir,
}

fn nas(generation: Generation) -> Nas {
    let root = tempfile::tempdir().unwrap();
    let server = FakeTrueNas::start(generation, KEY, root.path());
    let mountpoint = server.add_dataset("tank/data");
    fs::create_dir_all(mountpoint.join("docs")).unwrap();
    fs::write(mountpoint.join("docs/a.txt"), b"first").unwrap();
    Nas { server, mountpoint, _root: root }
}

fn config(server: &FakeTrueNas, key: &str) -> TrueNasConfig {
    let mut config = TrueNasConfig::new(server.url(), Secret::new(key));
    config.timeouts = Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(10) };
    config
}

fn connect(server: &FakeTrueNas) -> TrueNas<NativeTransport> {
    TrueNas::connect_native(config(server, KEY)).unwrap()
}

#[test]
fn detection_picks_transport_and_snapshot_methods_per_generation() {
    for (generation, api, methods, version) in [
        (Generation::V24_10, Api::Rest, SnapshotMethods::ZfsSnapshot, (24, 10)),
        (Generation::V25_04, Api::JsonRpc, SnapshotMethods::ZfsSnapshot, (25, 4)),
        (Generation::V25_10, Api::JsonRpc, SnapshotMethods::PoolSnapshot, (25, 10)),
    ] {
        let nas = nas(generation);
        let truenas = connect(&nas.server);
        assert_eq!(truenas.api(), api, "{generation:?}");
        assert_eq!(truenas.snapshot_methods(), methods, "{generation:?}");
        assert_eq!((truenas.version().major, truenas.version().minor), version);
        assert_eq!(truenas.version().text, generation.version());
        let calls = nas.server.methods();
        match api {
            Api::JsonRpc => assert_eq!(calls, ["auth.login_with_api_key", "system.version"], "{generation:?}"),
            Api::Rest => assert_eq!(calls, ["GET /api/v2.0/system/version"], "{generation:?}"),
        }
        truenas.close();
    }
}

#[test]
fn create_list_and_delete_a_snapshot_in_every_generation() {
    for generation in ALL {
        let nas = nas(generation);
        let truenas = connect(&nas.server);
        let mountpoint = truenas.dataset_mountpoint("tank/data").unwrap();
        assert_eq!(Path::new(&mountpoint), nas.mountpoint, "{generation:?}");

        let snapshot = truenas.create_snapshot("tank/data", "orch-run1", false).unwrap();
        assert_eq!((snapshot.id.as_str(), snapshot.name.as_str()), ("tank/data@orch-run1", "orch-run1"));
        assert_eq!(snapshot.dataset, "tank/data");
        let files = orchestrator_truenas::snapshot_path(&mountpoint, &snapshot.name);
        assert_eq!(fs::read(Path::new(&files).join("docs/a.txt")).unwrap(), b"first", "{generation:?}");
        // The snapshot is frozen: a later change is not in it.
        fs::write(nas.mountpoint.join("docs/a.txt"), b"changed").unwrap();
        assert_eq!(fs::read(Path::new(&files).join("docs/a.txt")).unwrap(), b"first");

        let listed = truenas.list_snapshots("tank/data", "orch-").unwrap();
        assert_eq!(listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["tank/data@orch-run1"]);

        truenas.delete_snapshot(&snapshot.id, false).unwrap();
        assert!(!Path::new(&files).exists(), "{generation:?}");
        assert!(truenas.list_snapshots("tank/data", "orch-").unwrap().is_empty());
        assert_eq!(nas.server.created(), nas.server.deleted(), "every snapshot created was deleted");

        let namespace = generation.snapshot_namespace();
        let expected: Vec<String> = match generation {
            Generation::V24_10 => vec![
                "GET /api/v2.0/pool/dataset/id/tank/data".into(),
                "POST /api/v2.0/zfs/snapshot".into(),
                "GET /api/v2.0/zfs/snapshot".into(),
                "DELETE /api/v2.0/zfs/snapshot/id/tank/data@orch-run1".into(),
                "GET /api/v2.0/zfs/snapshot".into(),
            ],
            _ => vec![
                "pool.dataset.query".into(),
                format!("{namespace}.create"),
                format!("{namespace}.query"),
                format!("{namespace}.delete"),
                format!("{namespace}.query"),
            ],
        };
        let methods = nas.server.methods();
        assert_eq!(&methods[methods.len() - expected.len()..], expected.as_slice(), "{generation:?}");
        assert!(nas.server.calls().iter().all(|c| c.ok), "{generation:?}: {:?}", nas.server.calls());
        truenas.close();
    }
}

#[test]
fn recursive_snapshots_cover_child_datasets_and_go_together() {
    for generation in ALL {
        let nas = nas(generation);
        let child = nas.server.add_dataset("tank/data/child");
        fs::write(child.join("c.txt"), b"child").unwrap();
        let truenas = connect(&nas.server);
        truenas.create_snapshot("tank/data", "orch-r", true).unwrap();
        assert_eq!(nas.server.snapshot_ids(), ["tank/data/child@orch-r", "tank/data@orch-r"]);
        assert_eq!(fs::read(child.join(".zfs/snapshot/orch-r/c.txt")).unwrap(), b"child");
        // Listing one dataset does not show its children's snapshots.
        assert_eq!(truenas.list_snapshots("tank/data", "orch-").unwrap().len(), 1);
        truenas.delete_snapshot("tank/data@orch-r", true).unwrap();
        assert!(nas.server.snapshot_ids().is_empty(), "{generation:?}");
    }
}

#[test]
fn leftovers_of_crashed_runs_are_swept_by_prefix_oldest_first() {
    for generation in ALL {
        let nas = nas(generation);
        nas.server.create_snapshot("tank/data", "orch-old1");
        nas.server.create_snapshot("tank/data", "manual-keep");
        nas.server.create_snapshot("tank/data", "orch-old2");
        let truenas = connect(&nas.server);
        let leftovers = truenas.list_snapshots("tank/data", "orch-").unwrap();
        let names: Vec<&str> = leftovers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["orch-old1", "orch-old2"], "{generation:?}: oldest first, other prefixes left alone");
        assert!(leftovers[0].createtxg < leftovers[1].createtxg);
        for snapshot in &leftovers {
            truenas.delete_snapshot(&snapshot.id, false).unwrap();
        }
        assert_eq!(nas.server.snapshot_ids(), ["tank/data@manual-keep"], "{generation:?}");
        // Keeping the last N: the list is what a caller trims from the front.
        for run in 1..=3 {
            truenas.create_snapshot("tank/data", &format!("orch-{run}"), false).unwrap();
        }
        let all = truenas.list_snapshots("tank/data", "orch-").unwrap();
        for snapshot in &all[..all.len() - 1] {
            truenas.delete_snapshot(&snapshot.id, false).unwrap();
        }
        assert_eq!(nas.server.snapshot_ids(), ["tank/data@manual-keep", "tank/data@orch-3"]);
    }
}

fn assert_no_key(err: &TrueNasError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY) && !text.contains("wrong-key"), "a key in: {text}");
}

#[test]
fn a_wrong_api_key_is_named_in_every_generation() {
    for generation in ALL {
        let nas = nas(generation);
        let err = TrueNas::connect_native(config(&nas.server, "3-wrong-key")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{generation:?}: {err}");
        assert!(matches!(err, TrueNasError::WrongApiKey { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&nas.server.url()) && text.contains("API key"), "{text}");
        assert_no_key(&err);
        let transport = nas.server.calls()[0].transport;
        let expected = if generation == Generation::V24_10 { Transport::Rest } else { Transport::JsonRpc };
        assert_eq!(transport, expected);
    }
}

#[test]
fn with_a_user_name_json_rpc_logs_in_with_login_ex() {
    for generation in [Generation::V25_04, Generation::V25_10] {
        let nas = nas(generation);
        let mut with_user = config(&nas.server, KEY);
        with_user.username = Some(API_KEY_USER.to_owned());
        let truenas = TrueNas::connect_native(with_user.clone()).unwrap();
        assert_eq!(nas.server.methods(), ["auth.login_ex", "system.version"]);
        assert_eq!(nas.server.calls()[0].params[0]["mechanism"], "API_KEY_PLAIN");
        truenas.close();
        with_user.username = Some("someone-else".to_owned());
        let err = TrueNas::connect_native(with_user).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(err.to_string().contains("someone-else"), "{err}");
        assert_no_key(&err);
    }
    // REST has no login: the user name is not needed there.
    let nas = nas(Generation::V24_10);
    let mut with_user = config(&nas.server, KEY);
    with_user.username = Some(API_KEY_USER.to_owned());
    assert_eq!(TrueNas::connect_native(with_user).unwrap().api(), Api::Rest);
}

#[test]
fn a_missing_dataset_is_named_in_every_generation() {
    for generation in ALL {
        let nas = nas(generation);
        let truenas = connect(&nas.server);
        let err = truenas.dataset_mountpoint("tank/nope").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DatasetNotFound, "{generation:?}: {err}");
        let text = err.to_string();
        assert!(text.contains("tank/nope") && text.contains(&nas.server.url()), "{text}");
        let err = truenas.create_snapshot("tank/nope", "orch-1", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DatasetNotFound, "{generation:?}: {err}");
        assert!(truenas.list_snapshots("tank/nope", "orch-").unwrap().is_empty());
        assert_no_key(&err);
    }
}

#[test]
fn an_existing_snapshot_name_is_refused_and_a_missing_one_not_found() {
    for generation in ALL {
        let nas = nas(generation);
        let truenas = connect(&nas.server);
        truenas.create_snapshot("tank/data", "orch-x", false).unwrap();
        let err = truenas.create_snapshot("tank/data", "orch-x", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotRefused, "{generation:?}: {err}");
        let text = err.to_string();
        assert!(text.contains("tank/data@orch-x") && text.contains("already exists"), "{text}");
        truenas.delete_snapshot("tank/data@orch-x", false).unwrap();
        let err = truenas.delete_snapshot("tank/data@orch-x", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{generation:?}: {err}");
    }
}

#[test]
fn bad_names_are_refused_before_asking_the_nas() {
    let nas = nas(Generation::V25_10);
    let truenas = connect(&nas.server);
    let before = nas.server.calls().len();
    for dataset in ["/mnt/tank/data", "tank/data@x", ""] {
        let err = truenas.dataset_mountpoint(dataset).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{dataset}: {err}");
    }
    let err = truenas.create_snapshot("tank/data", "a/b", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(nas.server.calls().len(), before);
}

#[test]
fn an_unreachable_nas_is_named() {
    let port = test_servers::free_port();
    let config = TrueNasConfig::new(format!("http://127.0.0.1:{port}"), Secret::new(KEY));
    let err = TrueNas::connect_native(config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_no_key(&err);
}

#[test]
fn a_nas_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = TrueNasConfig::new(format!("http://{}", listener.local_addr().unwrap()), Secret::new(KEY));
    config.timeouts = Timeouts { connect: Duration::from_millis(300), request: Duration::from_millis(300) };
    let err = TrueNas::connect_native(config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert_eq!(err.transport().map(|e| e.kind), Some(orchestrator_truenas::TransportErrorKind::Timeout), "{err}");
}

#[test]
fn https_with_a_pinned_certificate_and_a_ca_file() {
    for generation in [Generation::V24_10, Generation::V25_10] {
        let root = tempfile::tempdir().unwrap();
        let server = FakeTrueNas::start_tls(generation, KEY, root.path());
        server.add_dataset("tank/data");
        let mut pinned = config(&server, KEY);
        pinned.tls = TlsConfig { ca_file: None, tls_fingerprint: server.cert_fingerprint().map(str::to_owned) };
        let truenas = TrueNas::connect_native(pinned).unwrap();
        truenas.create_snapshot("tank/data", "orch-tls", false).unwrap();
        truenas.delete_snapshot("tank/data@orch-tls", false).unwrap();
        let mut with_ca = config(&server, KEY);
        with_ca.tls = TlsConfig { ca_file: server.ca_file().map(Path::to_path_buf), tls_fingerprint: None };
        assert!(TrueNas::connect_native(with_ca).unwrap().dataset_mountpoint("tank/data").is_ok());
        // Untrusted with the system's roots (Config where the machine has none).
        let err = TrueNas::connect_native(config(&server, KEY)).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Tls | ErrorKind::Config), "{err}");
        assert!(err.to_string().contains("tls_fingerprint"), "{err}");
    }
}

#[test]
fn plain_http_to_a_network_nas_is_refused() {
    let config = TrueNasConfig::new("http://192.0.2.7", Secret::new(KEY));
    let err = TrueNas::connect_native(config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[test]
fn child_datasets_are_listed_with_their_mounts_in_every_generation() {
    for generation in ALL {
        let nas = nas(generation);
        nas.server.add_dataset("tank/data/photos");
        nas.server.add_dataset("tank/data/photos/raw");
        let elsewhere = nas._root.path().join("elsewhere");
        nas.server.add_dataset_at("tank/data/outside", &elsewhere);
        nas.server.add_unmounted_dataset("tank/data/off", false);
        nas.server.add_unmounted_dataset("tank/data/fstab", true);
        nas.server.add_dataset("tank/database");
        let truenas = connect(&nas.server);
        let children = truenas.child_datasets("tank/data").unwrap();
        let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["tank/data/fstab", "tank/data/off", "tank/data/outside", "tank/data/photos", "tank/data/photos/raw"],
            "{generation:?}: descendants only, not tank/database"
        );
        let at = |path: &Path| Mount::At(path.to_string_lossy().into_owned());
        assert!(matches!(&children[0].mount, Mount::NotMounted(why) if why.contains("legacy")), "{children:?}");
        assert!(matches!(&children[1].mount, Mount::NotMounted(_)), "{children:?}");
        assert_eq!(children[2].mount, at(&elsewhere));
        assert_eq!(children[3].mount, at(&nas.mountpoint.join("photos")));
        assert_eq!(children[4].mount, at(&nas.mountpoint.join("photos/raw")));
        assert!(truenas.child_datasets("tank/data/photos/raw").unwrap().is_empty());
        let last = nas.server.calls().last().cloned().unwrap();
        assert!(last.ok, "{last:?}");
        match generation {
            Generation::V24_10 => assert!(last.method.starts_with("GET /api/v2.0/pool/dataset"), "{last:?}"),
            _ => assert_eq!(last.params[0], serde_json::json!([["id", "^", "tank/data/photos/raw/"]])),
        }
        truenas.close();
    }
}

#[test]
fn a_recursive_snapshot_holds_each_dataset_s_own_files() {
    let nas = nas(Generation::V25_10);
    let photos = nas.server.add_dataset("tank/data/photos");
    fs::write(photos.join("p.jpg"), b"photo").unwrap();
    let truenas = connect(&nas.server);
    truenas.create_snapshot("tank/data", "orch-z", true).unwrap();
    let parent = nas.mountpoint.join(".zfs/snapshot/orch-z");
    assert!(parent.join("photos").is_dir(), "the child's mountpoint is there");
    assert_eq!(fs::read_dir(parent.join("photos")).unwrap().count(), 0, "but empty, as ZFS shows it");
    assert_eq!(fs::read(photos.join(".zfs/snapshot/orch-z/p.jpg")).unwrap(), b"photo");
    truenas.delete_snapshot("tank/data@orch-z", true).unwrap();
    assert!(!photos.join(".zfs/snapshot/orch-z").exists());
}
