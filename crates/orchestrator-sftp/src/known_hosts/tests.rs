use super::*;

/// An Ed25519 key, its `ssh-keygen -l` fingerprint, and a second key.
const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAII/CLTTzwCpeK7TsWnHH8NjgATC8LCJGYdFTv74uEKSU";
const KEY_FINGERPRINT: &str = "SHA256:s9Me+8VoT91xy8xb3g//hN1jaZCXWseukR8Ag+uXVCI";
const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKlLumGh0uQp9ieIqDfioouCJV44TxhipQqTuyNcHhWI";
/// `ssh-keygen -H` of `[nas.lan]:2222 KEY` and of `backup.example.org KEY`.
const HASHED: &str = "\
|1|VO5z66XTwSKd7MQBRfTOQ5czSh0=|4+9cxjyHqBHghiWBUBBabdleV1M= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/CLTTzwCpeK7TsWnHH8NjgATC8LCJGYdFTv74uEKSU
|1|QGD+IRhuCqIu9X7lqYLiQBicWh8=|50/DGYNGEWeZWZupIYeh6rTEMB0= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/CLTTzwCpeK7TsWnHH8NjgATC8LCJGYdFTv74uEKSU
";

fn blob(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap()
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    assert_eq!(fingerprint(&blob(KEY)), KEY_FINGERPRINT);
    assert_eq!(key_type(&blob(KEY)).as_deref(), Some("ssh-ed25519"));
}

#[test]
fn plain_entries_by_name_and_bracketed_port() {
    let file =
        KnownHosts::parse(&format!("# comment\n\nnas.lan ssh-ed25519 {KEY}\n[nas.lan]:2222 ssh-ed25519 {OTHER}\n"));
    assert_eq!(file.check("nas.lan", 22, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("NAS.lan", 22, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("nas.lan", 2222, &blob(OTHER)), Verdict::Known);
    // The port-22 entry does not speak for port 2222, nor the other way round.
    assert_eq!(
        file.check("nas.lan", 2222, &blob(KEY)),
        Verdict::Changed { lines: vec![4], known_types: vec!["ssh-ed25519".into()] }
    );
    assert_eq!(file.check("nas.lan", 2223, &blob(KEY)), Verdict::Unknown);
    assert_eq!(file.check("other.lan", 22, &blob(KEY)), Verdict::Unknown);
}

#[test]
fn hashed_entries_from_ssh_keygen() {
    let file = KnownHosts::parse(HASHED);
    assert_eq!(file.check("nas.lan", 2222, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("backup.example.org", 22, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("nas.lan", 22, &blob(KEY)), Verdict::Unknown);
    assert!(matches!(file.check("backup.example.org", 22, &blob(OTHER)), Verdict::Changed { .. }));
}

#[test]
fn patterns_lists_wildcards_and_negation() {
    let file = KnownHosts::parse(&format!("*.lan,!evil.lan,10.0.0.? ssh-ed25519 {KEY}\n"));
    assert_eq!(file.check("nas.lan", 22, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("10.0.0.7", 22, &blob(KEY)), Verdict::Known);
    assert_eq!(file.check("10.0.0.17", 22, &blob(KEY)), Verdict::Unknown);
    assert_eq!(file.check("evil.lan", 22, &blob(KEY)), Verdict::Unknown);
}

#[test]
fn revoked_wins_and_cert_authority_and_garbage_are_skipped() {
    let text = format!(
        "nas.lan ssh-ed25519 {KEY}\n@revoked * ssh-ed25519 {KEY}\n@cert-authority *.lan ssh-ed25519 {OTHER}\n\
         nas.lan sk-ssh-ed25519@openssh.com not-base64!\nthis line is garbage\n"
    );
    let file = KnownHosts::parse(&text);
    assert_eq!(file.check("nas.lan", 22, &blob(KEY)), Verdict::Revoked { line: 2 });
    assert_eq!(
        file.check("nas.lan", 22, &blob(OTHER)),
        Verdict::Changed { lines: vec![1], known_types: vec!["ssh-ed25519".into()] }
    );
}

#[test]
fn key_types_for_a_host() {
    let rsa_blob = {
        let mut b = vec![0, 0, 0, 7];
        b.extend_from_slice(b"ssh-rsa");
        b.extend_from_slice(&[0, 0, 0, 1, 1]);
        STANDARD.encode(b)
    };
    let file = KnownHosts::parse(&format!("nas.lan ssh-rsa {rsa_blob}\nnas.lan,other ssh-ed25519 {KEY}\n"));
    assert_eq!(file.key_types_for("nas.lan", 22), ["ssh-rsa", "ssh-ed25519"]);
    assert_eq!(file.key_types_for("other", 22), ["ssh-ed25519"]);
    assert!(file.key_types_for("nobody", 22).is_empty());
}

#[test]
fn a_missing_file_is_empty() {
    let file = KnownHosts::load(Path::new("/nonexistent/known_hosts")).unwrap();
    assert_eq!(file.check("nas.lan", 22, &blob(KEY)), Verdict::Unknown);
}
