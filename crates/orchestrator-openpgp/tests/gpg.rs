//! Sealing and opening checked against the real GnuPG on this machine, in both
//! directions. Under `CI=true` a missing `gpg` fails the tests; elsewhere they
//! are skipped with a note.

use orchestrator_openpgp::{Error, OpenKey, SealKey, Sealer, SealingKey, open, read_public_keys, read_secret_key};
use std::io::{Cursor, Read, Write};
use std::process::{Command, Stdio};

fn gpg_available() -> bool {
    let found = Command::new("gpg").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("gpg is not installed (apt-get install gnupg); these tests need it");
    }
    if !found {
        eprintln!("SKIPPED: gpg is not installed");
    }
    found
}

/// A private GnuPG home, so tests never touch the user's keyring.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::tempdir().unwrap();
        let mut perms = std::fs::metadata(home.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(home.path(), perms).unwrap();
        Gpg { home }
    }

    /// Runs gpg with `args`, feeding `input`; panics with gpg's stderr on failure.
    fn run(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let (ok, out, err) = self.try_run(args, input);
        assert!(ok, "gpg {args:?} failed: {err}");
        out
    }

    fn try_run(&self, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
        let mut child = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Generates a key for `uid` with `algo` (e.g. `rsa2048`, `future-default`),
    /// protected by `passphrase`; returns (armored public, armored secret).
    fn generate(&self, uid: &str, algo: &str, passphrase: &str) -> (Vec<u8>, Vec<u8>) {
        self.run(&["--passphrase", passphrase, "--quick-gen-key", uid, algo, "default", "never"], b"");
        if algo.starts_with("rsa") {
            // An RSA primary from quick-gen-key signs and certifies; add an
            // encryption subkey as `gpg --full-gen-key` would.
            let fpr = self.fingerprint(uid);
            self.run(&["--passphrase", passphrase, "--quick-add-key", &fpr, algo, "encr", "never"], b"");
        }
        let public = self.run(&["--armor", "--export", uid], b"");
        let secret = self.run(&["--passphrase", passphrase, "--armor", "--export-secret-keys", uid], b"");
        (public, secret)
    }

    fn fingerprint(&self, uid: &str) -> String {
        let out = String::from_utf8(self.run(&["--with-colons", "--list-keys", uid], b"")).unwrap();
        out.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string()
    }
}

/// Deterministic data, half of it compressible.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|i| {
            if (i / 4096) % 2 == 0 {
                b"the quick brown fox jumps over the lazy dog\n"[i % 44]
            } else {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
        })
        .collect()
}

fn seal(plain: &[u8], key: &SealKey) -> Vec<u8> {
    let mut sealer = Sealer::new(Vec::new(), key).unwrap();
    // Uneven writes, as a plugin's would be.
    for chunk in plain.chunks(77_777) {
        sealer.write_all(chunk).unwrap();
    }
    sealer.finish().unwrap()
}

fn open_all(sealed: Vec<u8>, key: &OpenKey) -> Result<Vec<u8>, Error> {
    let mut reader = open(Cursor::new(sealed), key)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

const SIZES: [usize; 4] = [0, 1, 100_000, 3_000_001];

#[test]
fn gpg_decrypts_what_we_seal_with_a_passphrase() {
    if !gpg_available() {
        return;
    }
    let gpg = Gpg::new();
    for len in SIZES {
        let plain = data(len);
        let sealed = seal(&plain, &SealKey::Passphrase("correct horse".into()));
        let opened = gpg.run(&["--passphrase", "correct horse", "--decrypt"], &sealed);
        assert_eq!(opened.len(), plain.len());
        assert!(opened == plain, "gpg decrypted something else ({len} bytes)");
        let packets = String::from_utf8_lossy(&gpg.run(&["--list-packets", "--passphrase", "correct horse"], &sealed))
            .into_owned();
        // What duplicity's gpg writes: SKESK v4 with AES-256, SEIPD v1 with MDC, ZIP.
        assert!(packets.contains("symkey enc packet: version 4, cipher 9"), "{packets}");
        assert!(packets.contains("encrypted data packet:") && packets.contains("mdc_method: 2"), "{packets}");
        assert!(packets.contains("compressed packet: algo=1"), "{packets}");
    }
}

#[test]
fn one_prepared_key_seals_many_messages_at_every_compression_level() {
    if !gpg_available() {
        return;
    }
    let gpg = Gpg::new();
    let key = SealingKey::new(&SealKey::Passphrase("shared".into())).unwrap();
    for level in [0, 1, 6, 9] {
        let key = key.clone().with_compression(level);
        for len in [0, 5_000_000] {
            let plain = data(len);
            let mut sealer = Sealer::with_key(Vec::new(), &key).unwrap();
            sealer.write_all(&plain).unwrap();
            let sealed = sealer.finish().unwrap();
            assert!(gpg.run(&["--passphrase", "shared", "--decrypt"], &sealed) == plain, "level {level}, {len} bytes");
            assert!(open_all(sealed.clone(), &OpenKey::Passphrase("shared".into())).unwrap() == plain);
            let packets =
                String::from_utf8_lossy(&gpg.run(&["--list-packets", "--passphrase", "shared"], &sealed)).into_owned();
            assert_eq!(packets.contains("compressed packet"), level > 0, "level {level}: {packets}");
            if len > 0 && level == 0 {
                assert!(sealed.len() > len, "level 0 compressed");
            }
        }
    }
}

#[test]
fn a_given_salt_is_the_messages_salt_and_gpg_reads_it() {
    if !gpg_available() {
        return;
    }
    let gpg = Gpg::new();
    let passphrase = SealKey::Passphrase("salted".into());
    let drawn = SealingKey::new(&passphrase).unwrap().salt().unwrap();
    let salt = [1, 2, 3, 4, 5, 6, 7, 8];
    assert_ne!(drawn, salt);
    let key = SealingKey::with_salt(&passphrase, Some(salt)).unwrap();
    assert_eq!(key.salt(), Some(salt));
    let plain = data(300_000);
    let mut sealer = Sealer::with_key(Vec::new(), &key).unwrap();
    sealer.write_all(&plain).unwrap();
    let sealed = sealer.finish().unwrap();
    assert!(gpg.run(&["--passphrase", "salted", "--decrypt"], &sealed) == plain);
    let packets =
        String::from_utf8_lossy(&gpg.run(&["--list-packets", "--passphrase", "salted"], &sealed)).into_owned();
    assert!(packets.contains("salt 0102030405060708"), "{packets}");
}

#[test]
fn we_open_what_gpg_encrypts_with_a_passphrase_and_every_compression() {
    if !gpg_available() {
        return;
    }
    let gpg = Gpg::new();
    let plain = data(2_000_003);
    for algo in ["zip", "zlib", "bzip2", "none"] {
        let sealed =
            gpg.run(&["--passphrase", "pw", "--symmetric", "--cipher-algo", "AES256", "--compress-algo", algo], &plain);
        let opened = open_all(sealed, &OpenKey::Passphrase("pw".into())).unwrap();
        assert!(opened == plain, "{algo}: opened something else");
    }
    // gpg's own defaults (AES-128, S2K from gpg.conf) too.
    let sealed = gpg.run(&["--passphrase", "pw", "--symmetric"], &plain);
    assert!(open_all(sealed, &OpenKey::Passphrase("pw".into())).unwrap() == plain);
}

#[test]
fn public_key_round_trips_with_rsa_and_curve25519() {
    if !gpg_available() {
        return;
    }
    let gpg = Gpg::new();
    for (uid, algo) in [("RSA <rsa@example.invalid>", "rsa2048"), ("Curve <cv@example.invalid>", "future-default")] {
        let (public, secret) = gpg.generate(uid, algo, "key pass");
        let recipients = read_public_keys(&public).unwrap();
        assert_eq!(recipients.len(), 1);
        let plain = data(1_500_000);

        // We seal to the public key; gpg opens with its secret key.
        let sealed = seal(&plain, &SealKey::Recipients(recipients.clone()));
        let opened = gpg.run(&["--passphrase", "key pass", "--decrypt"], &sealed);
        assert!(opened == plain, "{algo}: gpg opened something else");

        // gpg encrypts to the key; we open with the exported secret key.
        let sealed = gpg.run(&["--encrypt", "--recipient", uid, "--trust-model", "always"], &plain);
        let secret_key = read_secret_key(&secret).unwrap();
        let key = OpenKey::SecretKey { key: secret_key.clone(), passphrase: Some("key pass".into()) };
        assert!(open_all(sealed.clone(), &key).unwrap() == plain, "{algo}: we opened something else");

        // The secret key's passphrase matters, and a passphrase is not a key.
        let wrong = OpenKey::SecretKey { key: secret_key.clone(), passphrase: Some("nope".into()) };
        assert!(matches!(open_all(sealed.clone(), &wrong), Err(Error::WrongKey(_))), "{algo}");
        let none = OpenKey::SecretKey { key: secret_key, passphrase: None };
        assert!(matches!(open_all(sealed.clone(), &none), Err(Error::WrongKey(m)) if m.contains("passphrase")));
        assert!(matches!(open_all(sealed, &OpenKey::Passphrase("key pass".into())), Err(Error::WrongKey(_))));
    }
}

#[test]
fn wrong_passphrase_damage_and_truncation_are_errors() {
    if !gpg_available() {
        return;
    }
    let plain = data(1_000_000);
    let sealed = seal(&plain, &SealKey::Passphrase("right".into()));
    assert!(matches!(open_all(sealed.clone(), &OpenKey::Passphrase("wrong".into())), Err(Error::WrongKey(_))));

    // A flipped bit in the middle: the MDC fails, and EOF is never reported.
    let mut damaged = sealed.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x20;
    let err = open_all(damaged, &OpenKey::Passphrase("right".into())).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");

    // Cut short: an error, not a short plaintext.
    for cut in [sealed.len() - 1, sealed.len() - 30, sealed.len() / 3] {
        let err = open_all(sealed[..cut].to_vec(), &OpenKey::Passphrase("right".into())).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "cut at {cut}: {err:?}");
    }

    // Not OpenPGP at all.
    let err = open_all(b"just some text, not a message".to_vec(), &OpenKey::Passphrase("right".into())).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_) | Error::Unsupported(_)), "{err:?}");

    // gpg agrees the damaged one is bad, and the good one is good.
    let gpg = Gpg::new();
    assert_eq!(gpg.run(&["--passphrase", "right", "--decrypt"], &sealed), plain);
}

#[test]
fn a_dropped_sealer_leaves_a_message_nobody_accepts() {
    if !gpg_available() {
        return;
    }
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl orchestrator_openpgp::OwnedWrite for Shared {}
    let mut sealer = Sealer::new(Shared(out.clone()), &SealKey::Passphrase("pw".into())).unwrap();
    sealer.write_all(&data(2_000_000)).unwrap();
    drop(sealer);
    let partial = out.lock().unwrap().clone();
    let gpg = Gpg::new();
    let (ok, plain, err) = gpg.try_run(&["--passphrase", "pw", "--decrypt"], &partial);
    assert!(
        !ok,
        "gpg accepted an unfinished message of {} bytes ({} plaintext bytes): {err}",
        partial.len(),
        plain.len()
    );
    assert!(open_all(partial, &OpenKey::Passphrase("pw".into())).is_err());
}

#[test]
fn unusable_keys_are_refused_with_a_reason() {
    assert!(matches!(read_public_keys(b"not a key"), Err(Error::Key(_))));
    assert!(matches!(read_secret_key(b""), Err(Error::Key(_))));
    assert!(matches!(Sealer::new(Vec::new(), &SealKey::Recipients(vec![])), Err(Error::Key(_))));
    assert!(matches!(Sealer::new(Vec::new(), &SealKey::Passphrase(String::new())), Err(Error::Key(_))));
    let debug = format!("{:?}", SealKey::Passphrase("hunter2".into()));
    assert!(!debug.contains("hunter2"), "{debug}");
}
