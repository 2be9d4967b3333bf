use super::*;
use crate::{Encoding, OpenpgpKeys, SecretValue};
use sha1::{Digest, Sha1};

#[test]
fn names_must_be_plain_and_relative() {
    for bad in ["", "/abs", "a/../b", "..", "a//b", "./a", "a\0b"] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    for good in ["a", "dir/obj.gpg", "duplicity-full.20261122T111118Z.vol1.difftar.gpg", "a.orchestrator-x"] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn the_hosts_own_objects_are_neither_listed_nor_reachable() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let backend = open(&url).unwrap();
    let ctx = Place::new(backend.clone(), "docs");
    assert!(backend.create_new("docs/.orchestrator-lock", b"{}").unwrap());
    assert!(backend.create_new("docs/sub/.orchestrator-x/y", b"1").unwrap());
    assert!(!backend.create_new("docs/.orchestrator-lock", b"other").unwrap(), "create_new replaced");
    let mut w = ctx.put("visible", &Encoding::None).unwrap();
    w.write(b"v".to_vec()).unwrap();
    w.finish().unwrap();
    let names: Vec<_> = ctx.list().unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["visible"]);
    let none = Encoding::None;
    for name in [".orchestrator-lock", "sub/.orchestrator-x/y", ".orchestrator-tmp-1-2"] {
        let denied = |r: Result<(), StorageError>| matches!(r, Err(StorageError::PermissionDenied(_)));
        assert!(denied(ctx.get(name, &none).map(|_| ())), "{name}");
        assert!(denied(ctx.put(name, &none).map(|_| ())), "{name}");
        assert!(denied(ctx.delete(name)), "{name}");
    }
    let (content, modified) = backend.read_small("docs/.orchestrator-lock").unwrap().unwrap();
    assert_eq!(content, b"{}");
    assert!(modified.is_some());
    backend.replace("docs/.orchestrator-lock", b"new").unwrap();
    assert_eq!(backend.read_small("docs/.orchestrator-lock").unwrap().unwrap().0, b"new");
    backend.remove("docs/.orchestrator-lock").unwrap();
    assert!(backend.read_small("docs/.orchestrator-lock").unwrap().is_none());
    assert!(backend.create_new("docs/.orchestrator-lock", b"again").unwrap());

    // The debris of interrupted writes goes; a lock another run is
    // creating right now stays, one that was never finished goes.
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    let debris =
        [".orchestrator-tmp-1-1", "sub/.orchestrator-tmp-1-2", ".orchestrator-new-1-3", ".orchestrator-new-1-4"];
    for name in debris {
        std::fs::write(docs.join(name), b"x").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let unfinished = std::fs::File::options().write(true).open(docs.join(".orchestrator-new-1-4")).unwrap();
    unfinished.set_modified(hour_ago).unwrap();
    assert_eq!(backend.remove_debris("docs").unwrap(), 3);
    assert!(docs.join(".orchestrator-new-1-3").exists());
    assert!(!docs.join(".orchestrator-new-1-4").exists());
    assert!(docs.join(".orchestrator-lock").exists() && docs.join("sub/.orchestrator-x/y").exists());
}

#[test]
fn objects_appear_only_when_finished_and_carry_their_sha1() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let ctx = Place::new(open(&url).unwrap(), "docs");
    let none = Encoding::None;
    let mut w = ctx.put("a/obj", &none).unwrap();
    w.write(b"hello ".to_vec()).unwrap();
    w.write(b"world".to_vec()).unwrap();
    assert!(ctx.list().unwrap().is_empty(), "half-written object is visible");
    let stored = w.finish().unwrap();
    assert_eq!(stored.sha1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
    assert_eq!(stored.size, 11);
    let listed = ctx.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].size), ("a/obj", 11));

    // A dropped writer leaves the old object and no debris.
    let mut w = ctx.put("a/obj", &none).unwrap();
    w.write(b"partial".to_vec()).unwrap();
    drop(w);
    let mut content = String::new();
    std::io::Read::read_to_string(&mut ctx.get("a/obj", &none).unwrap(), &mut content).unwrap();
    assert_eq!(content, "hello world");
    assert_eq!(ctx.list().unwrap().len(), 1);
    let files: Vec<_> = std::fs::read_dir(tmp.path().join("docs/a")).unwrap().collect();
    assert_eq!(files.len(), 1);

    ctx.delete("a/obj").unwrap();
    ctx.delete("a/obj").unwrap();
    assert!(matches!(ctx.get("a/obj", &none).map(|_| ()), Err(StorageError::NotFound(_))));
}

#[test]
fn gzip_is_done_by_the_host_and_hashes_the_stored_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let ctx = Place::new(open(&url).unwrap(), "docs");
    let data: Vec<u8> = b"compressible ".repeat(100_000);
    let mut w = ctx.put("v.gz", &Encoding::Gzip).unwrap();
    for chunk in data.chunks(65536) {
        w.write(chunk.to_vec()).unwrap();
    }
    let stored = w.finish().unwrap();
    let on_disk = std::fs::read(tmp.path().join("docs/v.gz")).unwrap();
    assert!(on_disk.len() < data.len() / 20, "not compressed: {}", on_disk.len());
    assert_eq!(stored.size, on_disk.len() as u64);
    assert_eq!(stored.sha1, hex::encode(Sha1::digest(&on_disk)));
    // Standard gzip: flate2 reads it back, and so does the host.
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&on_disk[..]), &mut plain).unwrap();
    assert_eq!(plain, data);
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut ctx.get("v.gz", &Encoding::Gzip).unwrap(), &mut back).unwrap();
    assert_eq!(back, data);
    let keys = OpenpgpKeys { passphrase: Some("passphrase".into()), recipients: None, secret_key: None };
    assert!(matches!(ctx.put("x.gpg", &Encoding::Openpgp(keys)).map(|_| ()), Err(StorageError::Config(_))));
}

#[test]
fn openpgp_is_sealed_with_the_hosts_secret_and_opened_only_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let ring = |value: &str| {
        let secrets = [("passphrase".to_string(), SecretValue::new(value.into()))].into_iter().collect();
        Arc::new(KeyRing::new(secrets, serde_json::json!({}), "/".into()))
    };
    let backend = open(&url).unwrap();
    let ctx = Place::new(backend.clone(), "docs").with_keys(ring("s3cret pass"));
    let keys =
        Encoding::Openpgp(OpenpgpKeys { passphrase: Some("passphrase".into()), recipients: None, secret_key: None });
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = ctx.put("v.gpg", &keys).unwrap();
    for chunk in data.chunks(65536) {
        w.write(chunk.to_vec()).unwrap();
    }
    let stored = w.finish().unwrap();
    let on_disk = std::fs::read(tmp.path().join("docs/v.gpg")).unwrap();
    assert_eq!(stored.sha1, hex::encode(Sha1::digest(&on_disk)));
    assert!(!on_disk.windows(8).any(|w| w == &data[1000..1008]), "plaintext is visible");
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut ctx.get("v.gpg", &keys).unwrap(), &mut back).unwrap();
    assert!(back == data);

    let wrong = Place::new(backend, "docs").with_keys(ring("other"));
    match wrong.get("v.gpg", &keys).map(|_| ()) {
        Err(StorageError::PermissionDenied(m)) => assert!(m.contains("passphrase") && !m.contains("s3cret"), "{m}"),
        other => panic!("a wrong passphrase opened it: {other:?}"),
    }
}

#[test]
fn every_run_seals_with_the_salt_the_cache_keeps_until_the_cache_is_gone() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = open(&format!("file://{}", cache_dir.path().display())).unwrap();
    let keys = OpenpgpKeys { passphrase: Some("passphrase".into()), recipients: None, secret_key: None };
    // A KeyRing per run, as each run starts the sink afresh.
    let run = || {
        let secrets = [("passphrase".to_string(), SecretValue::new("pw".into()))].into_iter().collect();
        KeyRing::new(secrets, serde_json::json!({}), "/".into())
            .with_salt_store(cache.clone(), "docs/.orchestrator-s2k-salt".into())
            .sealing_key(&keys)
            .unwrap()
            .salt()
            .unwrap()
    };
    let first = run();
    assert_eq!(run(), first);
    assert_eq!(run(), first);
    std::fs::remove_dir_all(cache_dir.path().join("docs")).unwrap();
    assert_ne!(run(), first, "a new cache draws a new salt");
}
