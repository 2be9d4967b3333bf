//! The container image (`Dockerfile`), built by `scripts/test.sh` on a base
//! made from Debian's packages and named by `ORCHESTRATOR_IMAGE`: a backup
//! of a mounted volume into a mounted target as TrueNAS' apps user with a
//! read-only root and secrets as files, and its restore; a TrueNAS dataset
//! through `local_path`; `docker stop` mid-run; the healthcheck turning
//! unhealthy when the newest backup is too old.

use crate::harness::Env;
use crate::roundtrip::assert_same_tree;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use test_servers::truenas::{FakeTrueNas, Generation};

/// TrueNAS SCALE's `apps` user and group.
const APPS: &str = "568:568";

/// The image under test, or `None` after a `SKIPPED` line outside CI.
fn image() -> Option<String> {
    match std::env::var("ORCHESTRATOR_IMAGE") {
        Ok(image) => Some(image),
        Err(_) => {
            let how = "ORCHESTRATOR_IMAGE is not set: scripts/test.sh builds the image (Docker needed) and sets it";
            assert!(!test_servers::in_ci(), "{how}; CI=true needs it");
            eprintln!("SKIPPED: {how}");
            None
        }
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker")
}

fn said(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `chown -R` to the apps user, so the container's user can write there.
fn give_to_apps(path: &Path) {
    let ok = Command::new("chown").arg("-R").arg(APPS).arg(path).status().unwrap().success();
    assert!(ok, "chown {}", path.display());
}

/// A small tree: modes, a symlink, an odd name, a subdirectory.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub dir")).unwrap();
    std::fs::write(root.join("a.txt"), "first\n").unwrap();
    std::fs::write(root.join("sub dir/big.bin"), vec![5u8; 3 << 20]).unwrap();
    std::fs::write(root.join("ünïcode ☂.txt"), "umbrella\n").unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("a.txt", root.join("link")).unwrap();
}

/// A pipeline for the container's paths: /data into /target, the
/// passphrase a file under /run/secrets.
const PIPELINE: &str = r#"
[pipeline]
name = "boxed"

[sources.docs]
plugin = "directory"
path = "/data"

[sinks.local]
plugin = "duplicity-sink"
target = "file:///target"
encryption = "symmetric"
passphrase = { file = "/run/secrets/passphrase" }
"#;

/// An environment whose dirs `config`, `data`, `target`, `cache`, `secrets`
/// are mounted where [`PIPELINE`] expects them.
fn boxed(env: &Env, pipeline: &str) -> Vec<String> {
    for dir in ["config", "data", "target", "cache", "secrets"] {
        std::fs::create_dir_all(env.path(dir)).unwrap();
    }
    std::fs::write(env.path("config/pipeline.toml"), pipeline).unwrap();
    std::fs::write(env.path("secrets/passphrase"), "boxed passphrase\n").unwrap();
    for dir in ["target", "cache", "secrets"] {
        give_to_apps(&env.path(dir));
    }
    // The data is only read: world-readable, as a NAS share would be.
    Command::new("chmod").args(["-R", "a+rX"]).arg(env.path("data")).status().unwrap();
    Command::new("chmod").arg("a+rx").arg(env.dir.path()).arg(env.path("config")).status().unwrap();
    let mount = |dir: &str, at: &str, ro: bool| {
        format!("--volume={}:{at}{}", env.path(dir).display(), if ro { ":ro" } else { "" })
    };
    vec![
        mount("config", "/config", true),
        mount("data", "/data", true),
        mount("target", "/target", false),
        mount("cache", "/cache", false),
        mount("secrets", "/run/secrets", true),
    ]
}

#[test]
fn a_backup_and_its_restore_as_the_apps_user_with_a_read_only_root() {
    let Some(image) = image() else { return };
    let env = Env::new();
    let mounts = boxed(&env, PIPELINE);
    tree(&env.path("data"));
    let mut args: Vec<String> = ["run", "--rm", "--read-only", "--user", APPS].map(String::from).to_vec();
    args.extend(mounts.iter().cloned());
    args.extend([image.clone(), "run".into(), "/config/pipeline.toml".into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"][0]["outcome"], "ok", "{report}");
    // Written as the apps user.
    let meta = std::fs::metadata(env.path("target/docs")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 568);

    // Restored by root in a container (owners kept) into a mounted directory.
    std::fs::create_dir_all(env.path("restored")).unwrap();
    let mut args: Vec<String> = ["run", "--rm", "--read-only", "--user", "0:0"].map(String::from).to_vec();
    args.extend(mounts.iter().cloned());
    args.push(format!("--volume={}:/restore", env.path("restored").display()));
    args.extend(
        [image, "restore".into(), "/config/pipeline.toml".into(), "--source".into(), "docs".into(), "--to".into()]
            .into_iter()
            .chain(["/restore".into()]),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    assert_same_tree(&env.path("data"), &env.path("restored"));
}

#[test]
fn a_truenas_dataset_through_local_path() {
    let Some(image) = image() else { return };
    let root = tempfile::Builder::new().prefix("fake-truenas-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = FakeTrueNas::start(Generation::V25_10, crate::truenas::KEY, root.path());
    let mountpoint = server.add_dataset("tank/data");
    tree(&mountpoint);
    Command::new("chmod").args(["-R", "a+rX"]).arg(root.path()).status().unwrap();
    let env = Env::new();
    let pipeline = PIPELINE.replace(
        "plugin = \"directory\"\npath = \"/data\"",
        &format!(
            "plugin = \"truenas-dataset\"\napi = \"{}\"\napi_key = {{ file = \"/run/secrets/truenas\" }}\n\
                 dataset = \"tank/data\"\nlocal_path = \"{}\"",
            server.url(),
            mountpoint.display()
        ),
    );
    let mut mounts = boxed(&env, &pipeline);
    std::fs::write(env.path("secrets/truenas"), crate::truenas::KEY).unwrap();
    give_to_apps(&env.path("secrets"));
    // The dataset where the NAS mounts it; snapshots appear under .zfs inside.
    mounts.push(format!("--volume={0}:{0}:ro", mountpoint.display()));
    let mut args: Vec<String> =
        ["run", "--rm", "--read-only", "--network=host", "--user", APPS].map(String::from).to_vec();
    args.extend(mounts);
    args.extend([image, "run".into(), "/config/pipeline.toml".into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"][0]["outcome"], "ok", "{report}");
    assert!(report["jobs"][0]["files_read"].as_u64().unwrap() >= 4, "{report}");
    // The snapshot it read was released.
    assert_eq!(server.created().len(), 1, "{:?}", server.calls());
    assert!(server.snapshot_ids().is_empty(), "{:?}", server.snapshot_ids());
}

#[test]
fn docker_stop_stops_a_run_cooperatively() {
    let Some(image) = image() else { return };
    let env = Env::new();
    let pipeline = PIPELINE.replace(
        "plugin = \"directory\"\npath = \"/data\"",
        "plugin = { path = \"/plugins/misbehaving.wasm\" }\nbehaviour = \"slow\"",
    );
    let mut mounts = boxed(&env, &pipeline);
    mounts.push(format!(
        "--volume={}:/plugins/misbehaving.wasm:ro",
        crate::harness::plugin("misbehaving_plugin").display()
    ));
    let name = format!("orchestrator-stop-{}", std::process::id());
    let mut args: Vec<String> =
        ["run", "--detach", "--read-only", "--user", APPS, "--name", &name].map(String::from).to_vec();
    args.extend(mounts);
    args.extend([image, "run".into(), "/config/pipeline.toml".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    // The lock shows the run is under way.
    let lock = env.path("target/docs/.orchestrator-lock");
    let started = Instant::now();
    while !lock.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lock.exists(), "{}", said(&docker(&["logs", &name])));
    let stopped = Instant::now();
    let out = docker(&["stop", "--time", "30", &name]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(stopped.elapsed() < Duration::from_secs(20), "not cooperative: {:?}", stopped.elapsed());
    let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    let logs = docker(&["logs", &name]);
    docker(&["rm", "--force", &name]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "143", "{}", said(&logs));
    assert!(String::from_utf8_lossy(&logs.stderr).contains("SIGTERM received"), "{}", said(&logs));
    assert!(!lock.exists(), "the lock is left");
}

#[test]
fn the_healthcheck_turns_unhealthy_when_the_newest_backup_is_too_old() {
    let Some(image) = image() else { return };
    let env = Env::new();
    let pipeline = PIPELINE.replace("name = \"boxed\"", "name = \"boxed\"\nschedule = \"0 0 1 1 *\"");
    let mounts = boxed(&env, &pipeline);
    tree(&env.path("data"));
    let name = format!("orchestrator-health-{}", std::process::id());
    let mut args: Vec<String> = [
        "run",
        "--detach",
        "--read-only",
        "--user",
        APPS,
        "--name",
        &name,
        "--env",
        "ORCHESTRATOR_MAX_AGE=8s",
        "--health-interval=1s",
        "--health-start-period=1s",
        "--health-retries=1",
    ]
    .map(String::from)
    .to_vec();
    args.extend(mounts.iter().cloned());
    args.push(image.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The default command: the daemon, whose schedule does not come soon.
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    let health = || {
        let o = docker(&["inspect", "--format", "{{.State.Health.Status}}", &name]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let wait_for = |want: &str| {
        let started = Instant::now();
        while health() != want {
            if started.elapsed() > Duration::from_secs(40) {
                let logs = docker(&["logs", &name]);
                let state = docker(&["inspect", "--format", "{{json .State.Health}}", &name]);
                docker(&["rm", "--force", &name]);
                panic!("never {want}: {}\n{}", String::from_utf8_lossy(&state.stdout), said(&logs));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    // No backup yet: unhealthy.
    wait_for("unhealthy");
    // A backup by a one-shot run beside it: healthy, until it is 8 s old.
    let mut run: Vec<String> = ["run", "--rm", "--read-only", "--user", APPS].map(String::from).to_vec();
    run.extend(mounts);
    run.extend([image, "run".into(), "/config/pipeline.toml".into()]);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let out = docker(&run);
    assert!(out.status.success(), "{}", said(&out));
    wait_for("healthy");
    wait_for("unhealthy");
    docker(&["rm", "--force", &name]);
}

#[test]
fn an_imap_mailbox_against_dovecot() {
    let Some(image) = image() else { return };
    let Some(server) = test_servers::dovecot::Dovecot::start() else { return };
    server.add_user("carol", "mail secret");
    server.create_folder("carol", "Archiv");
    server.deliver("carol", "INBOX", b"From: a@example.org\r\nSubject: one\r\n\r\nfirst\r\n");
    server.deliver("carol", "Archiv", b"From: b@example.org\r\nSubject: two\r\n\r\nsecond\r\n");
    let env = Env::new();
    let pipeline = PIPELINE.replace(
        "plugin = \"directory\"\npath = \"/data\"",
        &format!(
            "plugin = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"/run/secrets/ca.pem\"\nuser = \"carol\"\n\
             password = {{ file = \"/run/secrets/imap\" }}",
            server.imaps_port()
        ),
    );
    let mounts = boxed(&env, &pipeline);
    std::fs::write(env.path("secrets/imap"), "mail secret\n").unwrap();
    std::fs::copy(server.ca_file(), env.path("secrets/ca.pem")).unwrap();
    give_to_apps(&env.path("secrets"));
    let mut args: Vec<String> =
        ["run", "--rm", "--read-only", "--network=host", "--user", APPS].map(String::from).to_vec();
    args.extend(mounts);
    args.extend([image, "run".into(), "/config/pipeline.toml".into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(out.status.success(), "{}", said(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"][0]["outcome"], "ok", "{report}");
    assert_eq!(report["jobs"][0]["files_read"], 2, "two messages: {report}");
}

/// The compose examples are valid to Compose itself (Debian's
/// docker-compose, offline), and the pipeline they mount validates.
#[test]
fn the_compose_examples_are_valid() {
    let Some(compose) = test_servers::require_program(&["/usr/bin/docker-compose"], "docker-compose") else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose");
    for file in ["docker-compose.yml", "truenas-scale.yml"] {
        let out = Command::new(&compose).current_dir(&dir).args(["-f", file, "config", "-q"]).output().unwrap();
        assert!(out.status.success(), "{file}: {}", said(&out));
    }
    let rendered =
        Command::new(&compose).current_dir(&dir).args(["-f", "truenas-scale.yml", "config"]).output().unwrap();
    assert!(String::from_utf8_lossy(&rendered.stdout).contains("propagation: rslave"), "{}", said(&rendered));
    let env = Env::new();
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/archive-passphrase"), "p").unwrap();
    let text =
        std::fs::read_to_string(dir.join("config/pipeline.toml")).unwrap().replace("/run/secrets/", "{dir}/secrets/");
    let p = env.pipeline("pipeline.toml", &text);
    let run = env.run(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
}
