//! `s3://` targets against an S3-compatible server on loopback (moto, with
//! IAM checks on: tests/servers/src/s3.rs): a chain backed up in multipart
//! uploads, restored, listed, checked and locked; restored again from an
//! empty cache; an upload a killed run left aborted by the next run; the
//! credentials from the environment; and the failures a person meets
//! first: a wrong secret key, a missing bucket, plain http off this machine,
//! a credential written into the file.

use crate::duplicity::interop::noise;
use crate::harness::Env;
use crate::incremental::{backup, snapshot};
use crate::roundtrip::{assert_same_tree, odd_tree};
use orchestrator_storage::{SecretValue, StorageOptions};
use std::path::PathBuf;
use test_servers::s3::S3Server;

/// A pipeline backing up `tree` to `s3://backups/home`, with `storage`
/// lines added to the storage table (the endpoint is always there).
fn pipeline(env: &Env, server: &S3Server, credentials: bool, storage: &str) -> PathBuf {
    std::fs::write(env.path("key-id"), server.key_id()).unwrap();
    std::fs::write(env.path("secret"), server.secret()).unwrap();
    std::fs::write(env.path("pass"), "archive passphrase").unwrap();
    let credentials = if credentials {
        "access_key_id = { file = \"{dir}/key-id\" }\nsecret_access_key = { file = \"{dir}/secret\" }"
    } else {
        ""
    };
    let text = format!(
        r#"
[pipeline]
name = "offsite"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{{dir}}/tree"

[sinks.bucket]
plugin = "duplicity-sink"
target = "s3://backups/home"
encryption = "symmetric"
passphrase = {{ file = "{{dir}}/pass" }}
volsize_mb = 8

[sinks.bucket.storage]
endpoint = "{endpoint}"
part_size_mib = 5
{credentials}
{storage}
"#,
        endpoint = server.endpoint(),
    );
    env.pipeline("p.toml", &text)
}

/// Names under `home/docs/` in the bucket.
fn names(server: &S3Server) -> Vec<String> {
    server.objects("backups").into_iter().filter_map(|(k, _)| Some(k.strip_prefix("home/docs/")?.to_string())).collect()
}

#[test]
fn a_chain_goes_to_an_s3_server_and_comes_back() {
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    let tree = odd_tree(&env);
    std::fs::rename(&tree, env.path("tree")).unwrap();
    // Over a part: sent as a multipart upload, parts in parallel.
    std::fs::write(env.path("tree/big.bin"), noise(13 << 20, 7)).unwrap();
    let p = pipeline(&env, &server, true, "");
    let ps = p.to_str().unwrap();

    let validate = env.run(&["validate", ps], &[]);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(server.objects("backups").is_empty(), "validate touched the target");

    let full = backup(&env, &p, &[]);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    let first = snapshot(&env, &env.path("tree"), "first");
    std::fs::write(env.path("tree/added.txt"), "a new file on the second day\n").unwrap();
    let inc = backup(&env, &p, &[]);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");

    let stored = names(&server);
    assert!(stored.iter().any(|n| n.starts_with("duplicity-full.") && n.ends_with(".vol2.difftar.gpg")), "{stored:?}");
    assert!(stored.iter().any(|n| n.starts_with("duplicity-inc.") && n.ends_with(".manifest.gpg")), "{stored:?}");
    assert!(!stored.iter().any(|n| n.starts_with(".orchestrator-")), "markers or a lock left: {stored:?}");
    assert!(server.uploads("backups").is_empty(), "uploads left open: {:?}", server.uploads("backups"));
    let big = server.objects("backups").into_iter().map(|(_, size)| size).max().unwrap();
    assert!(big > 5 << 20, "no object went in parts ({big} bytes)");

    // A new machine: the pipeline file and the secrets, no cache.
    for cache in [false, true] {
        if cache {
            std::fs::remove_dir_all(env.path("cache")).unwrap();
        }
        let status = env.run(&["status", ps, "--json"], &[]);
        assert_eq!(status.code, 0, "{}", status.all());
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(status[0]["chains"][0]["sets"].as_array().unwrap().len(), 2, "{status}");
        for (time, to, expected) in
            [(None, "latest", env.path("tree")), (Some(full["set"]["time"].to_string()), "at-full", first.clone())]
        {
            let dest = env.path(&format!("{to}-{cache}"));
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
        let list = env.run(&["list", ps, "--source", "docs"], &[]);
        assert_eq!(list.code, 0, "{}", list.all());
        assert!(list.stdout.contains("added.txt") && list.stdout.contains("big.bin"), "{}", list.all());
    }

    // Another run's live lock in the bucket fails the job and names it.
    let far = jiff::Timestamp::now().as_second() + 3600;
    let lock = serde_json::json!({"run_id": "their-run", "hostname": "elsewhere", "pid": 4242,
        "pipeline": "offsite", "sink": "bucket", "acquired_at": far - 3600, "expires_at": far});
    server.put("backups", "home/docs/.orchestrator-lock", lock.to_string().as_bytes());
    let before = server.objects("backups");
    let run = env.run(&["run", ps], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("their-run") && run.stdout.contains("elsewhere"), "{}", run.all());
    assert!(run.stdout.contains("s3://backups/home/docs/.orchestrator-lock"), "{}", run.all());
    assert_eq!(server.objects("backups"), before, "a locked target was written to");
}

#[test]
fn an_upload_a_killed_run_left_is_aborted_by_the_next_run() {
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a.txt"), "a").unwrap();
    let p = pipeline(&env, &server, false, "");

    // What a run killed mid-volume leaves: a part sent, the upload open,
    // its marker beside it, and no object under the volume's name.
    let options = StorageOptions {
        values: serde_json::json!({"endpoint": server.endpoint(), "part_size_mib": 5}).as_object().unwrap().clone(),
        environment: [
            ("AWS_ACCESS_KEY_ID".to_string(), SecretValue::new(server.key_id().into())),
            ("AWS_SECRET_ACCESS_KEY".to_string(), SecretValue::new(server.secret().into())),
        ]
        .into_iter()
        .collect(),
        ..StorageOptions::default()
    };
    let storage = orchestrator_storage::open_with("s3://backups/home", &options).unwrap();
    let volume = "docs/duplicity-full.20261207T000000Z.vol1.difftar.gpg";
    let mut object = storage.put(volume).unwrap();
    object.write(&noise(6 << 20, 3)).unwrap();
    std::mem::forget(object); // killed: nothing runs after this
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.uploads("backups").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the upload never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left = server.objects("backups");
    assert!(left.iter().any(|(k, _)| k.starts_with("home/docs/.orchestrator-upload-")), "{left:?}");
    assert!(!left.iter().any(|(k, _)| k.ends_with(".vol1.difftar.gpg")), "a partial object is visible: {left:?}");
    let listed = storage.list("docs").unwrap();
    assert!(listed.is_empty(), "the marker is listed: {listed:?}");

    let envs = [("AWS_ACCESS_KEY_ID", server.key_id()), ("AWS_SECRET_ACCESS_KEY", server.secret())];
    let run = env.run(&["run", p.to_str().unwrap()], &envs);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("removed 1 temporary object"), "{}", run.all());
    assert!(server.uploads("backups").is_empty(), "the upload was not aborted: {:?}", server.uploads("backups"));
    let stored = names(&server);
    assert!(!stored.iter().any(|n| n.starts_with(".orchestrator-")), "{stored:?}");
    assert!(stored.iter().any(|n| n.starts_with("duplicity-full.")), "{stored:?}");
}

#[test]
fn s3_targets_fail_clearly() {
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a.txt"), "a").unwrap();

    // A wrong secret key: refused by the server, named, never printed.
    let p = pipeline(&env, &server, false, "");
    let wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY";
    let envs = [("AWS_ACCESS_KEY_ID", server.key_id()), ("AWS_SECRET_ACCESS_KEY", wrong)];
    let run = env.run(&["run", p.to_str().unwrap()], &envs);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("s3://backups/home/docs/"), "{}", run.all());
    assert!(run.stdout.contains("SignatureDoesNotMatch") || run.stdout.contains("403"), "{}", run.all());
    assert!(!run.all().contains(wrong), "{}", run.all());
    assert!(server.objects("backups").is_empty());

    // No credentials at all: said before anything is contacted.
    let run = env.run(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", run.all());

    // A bucket that is not there.
    let text = std::fs::read_to_string(&p).unwrap().replace("s3://backups/home", "s3://no-such-bucket/home");
    let missing = env.pipeline("missing.toml", &text);
    let good = [("AWS_ACCESS_KEY_ID", server.key_id()), ("AWS_SECRET_ACCESS_KEY", server.secret())];
    let run = env.run(&["run", missing.to_str().unwrap()], &good);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("s3://no-such-bucket/home/docs/"), "{}", run.all());

    // Plain http off this machine, and a secret written into the file.
    let p = pipeline(&env, &server, false, "").to_str().unwrap().to_string();
    let text = std::fs::read_to_string(&p).unwrap().replace(&server.endpoint(), "http://minio.lan:9000");
    let remote = env.pipeline("remote.toml", &text);
    let run = env.run(&["validate", remote.to_str().unwrap()], &good);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("remote.toml:") && run.stderr.contains("use https"), "{}", run.all());
    let p = pipeline(&env, &server, false, "secret_access_key = \"hunter2hunter2\"");
    let run = env.run(&["validate", p.to_str().unwrap()], &good);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("storage.secret_access_key: must be a secret"), "{}", run.all());
    assert!(!run.all().contains("hunter2hunter2"), "{}", run.all());
}

/// Stock duplicity 3.x (its boto3 backend, `--s3-endpoint-url`) restores
/// what we wrote to the server, and we restore what it wrote there.
#[test]
fn duplicity_3_and_we_read_each_others_backups_on_s3() {
    use crate::duplicity::{Duplicity, Encryption, Peer, with_duplicity};
    let Some(server) = S3Server::start() else { return };
    with_duplicity(Peer::Pypi3, |dup: &Duplicity| {
        let env = Env::new();
        let enc = Encryption::Symmetric;
        let tree = odd_tree(&env);
        std::fs::rename(&tree, env.path("tree")).unwrap();
        std::fs::write(env.path("tree/big.bin"), noise(6 << 20, 11)).unwrap();
        let creds = [("AWS_ACCESS_KEY_ID", server.key_id()), ("AWS_SECRET_ACCESS_KEY", server.secret())];
        let mut envs: Vec<(&str, &str)> = enc.env().to_vec();
        envs.extend(creds);
        let dup_env = creds;
        let s3_options = ["--s3-endpoint-url", &server.endpoint(), "--s3-region-name", "us-east-1"];
        let at = |target: &str| {
            let text = enc
                .reseal(&std::fs::read_to_string(pipeline(&env, &server, false, "")).unwrap())
                .replace("s3://backups/home", target);
            env.pipeline(&format!("{}.toml", target.replace(['/', ':'], "_")), &text)
        };

        // Ours, read by duplicity.
        let ours = at("s3://interop/ours");
        let run = env.run(&["run", ours.to_str().unwrap()], &envs);
        assert_eq!(run.code, 0, "{}", run.all());
        let dest = env.path("duplicity-restored");
        let mut args = vec!["restore", "s3://interop/ours/docs", dest.to_str().unwrap()];
        args.extend(s3_options);
        dup.run_in(&env, enc, &env.path("dup-cache-1"), &args, &dup_env);
        assert_same_tree(&env.path("tree"), &dest);

        // duplicity's, read by us.
        let tree = env.path("tree");
        let mut args = vec!["full", tree.to_str().unwrap(), "s3://interop/theirs/docs"];
        args.extend(s3_options);
        dup.run_in(&env, enc, &env.path("dup-cache-2"), &args, &dup_env);
        let theirs = at("s3://interop/theirs");
        let dest = env.path("we-restored");
        let run =
            env.run(&["restore", theirs.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &envs);
        assert_eq!(run.code, 0, "{}", run.all());
        assert_same_tree(&env.path("tree"), &dest);
    });
}

/// `limits.upload_rate` holds a sink's uploads to its rate on every kind of
/// target (here s3:// and file://, fed from one read of the source).
#[test]
fn an_upload_rate_holds_on_every_kind_of_target() {
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/noise.bin"), noise(3 << 20, 5)).unwrap();
    let text = std::fs::read_to_string(pipeline(&env, &server, true, ""))
        .unwrap()
        .replace("volsize_mb = 8\n", "volsize_mb = 8\nlimits = { upload_rate = \"2MiB/s\", upload_concurrency = 2 }\n");
    let text = format!(
        "{text}\n[sinks.disk]\nplugin = \"duplicity-sink\"\ntarget = \"file://{}/disk\"\nencryption = \"none\"\n\
         limits = {{ upload_rate = \"2MiB/s\" }}\n",
        env.path("").display()
    );
    let p = env.pipeline("rate.toml", &text);
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for job in report["jobs"].as_array().unwrap() {
        // 3 MiB of noise at 2 MiB/s: over a second, whatever the target.
        let seconds = job["seconds"].as_f64().unwrap();
        assert!(seconds >= 1.2, "{}: {seconds} s\n{report}", job["sink"]);
    }
}

/// Connections cut mid-transfer (by a proxy, as a dropped NAT mapping or a
/// restarted router would): an upload is retried, a read resumes where it
/// was, and both finish whole.
#[test]
fn connections_cut_mid_transfer_are_retried_and_resumed() {
    use test_servers::proxy::CuttingProxy;
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/big.bin"), noise(12 << 20, 13)).unwrap();
    std::fs::write(env.path("tree/small.txt"), "small").unwrap();
    let direct = std::fs::read_to_string(pipeline(&env, &server, true, "")).unwrap();
    let through =
        |proxy: &CuttingProxy, name: &str| env.pipeline(name, &direct.replace(&server.endpoint(), &proxy.endpoint()));

    let upload = CuttingProxy::start(server.port(), 3 << 20, 2);
    let p = through(&upload, "up.toml");
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(upload.cut() >= 1, "the proxy cut nothing");
    assert!(server.uploads("backups").is_empty(), "{:?}", server.uploads("backups"));

    let download = CuttingProxy::start(server.port(), 3 << 20, 2);
    let p = through(&download, "down.toml");
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    let dest = env.path("restored");
    let run = env.run(&["restore", p.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(download.cut() >= 1, "the proxy cut nothing");
    assert_same_tree(&env.path("tree"), &dest);
}

/// A service that answers 429 with `Retry-After` is waited for as long as
/// it asks, then the request goes through.
#[test]
fn a_429_with_retry_after_is_waited_for() {
    use test_servers::proxy::CuttingProxy;
    let Some(server) = S3Server::start() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a.txt"), "a").unwrap();
    let proxy = CuttingProxy::throttling(server.port(), 1, 3);
    let text = std::fs::read_to_string(pipeline(&env, &server, true, "")).unwrap();
    let p = env.pipeline("busy.toml", &text.replace(&server.endpoint(), &proxy.endpoint()));
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    // object_store's own first backoff is a tenth of a second.
    let seconds = report["jobs"][0]["seconds"].as_f64().unwrap();
    assert!(seconds >= 3.0, "the Retry-After of 3 s was not waited for: {seconds} s");
}
