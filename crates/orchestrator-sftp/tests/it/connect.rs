use super::*;
use orchestrator_sftp::{ErrorKind, FileKind, Secret};
use std::io::Write;
use std::net::TcpListener;
use test_servers::sshd::{KEY_PASSPHRASE, SshdOptions};

#[test]
fn key_auth_connects() {
    let Some(sshd) = Sshd::start() else { return };
    let sftp = connect(&sshd);
    assert_eq!(sftp.lstat(sshd.data_dir()).unwrap().kind, FileKind::Dir);
    assert_eq!(sftp.target().to_string(), format!("{}@127.0.0.1:{}", sshd.user(), sshd.port()));
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

#[test]
fn encrypted_key_with_its_passphrase_connects() {
    let Some(sshd) = Sshd::start() else { return };
    let auth = Auth::KeyFile { path: sshd.encrypted_key(), passphrase: Some(Secret::new(KEY_PASSPHRASE)) };
    let sftp = Sftp::connect(&config(&sshd, auth)).unwrap();
    assert_eq!(sftp.lstat(sshd.data_dir()).unwrap().kind, FileKind::Dir);
}

#[test]
fn wrong_or_missing_passphrase_is_auth_and_not_shown() {
    let Some(sshd) = Sshd::start() else { return };
    let wrong = "wrong-passphrase-Xyzzy-42";
    let auth = Auth::KeyFile { path: sshd.encrypted_key(), passphrase: Some(Secret::new(wrong)) };
    let e = connect_err(&config(&sshd, auth));
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("passphrase"), "{e}");
    assert!(e.to_string().contains(&sshd.encrypted_key().display().to_string()), "{e}");
    assert_no_secret(&e, wrong);

    let e = connect_err(&config(&sshd, key(&sshd.encrypted_key())));
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
}

#[test]
fn key_not_authorized_is_auth() {
    let Some(sshd) = Sshd::start() else { return };
    let e = connect_err(&config(&sshd, key(&sshd.unauthorized_key())));
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("{}@127.0.0.1:{}: ", sshd.user(), sshd.port())), "{text}");
    assert!(text.contains("authorized_keys"), "{text}");
}

#[test]
fn missing_key_file_is_auth() {
    let Some(sshd) = Sshd::start() else { return };
    let e = connect_err(&config(&sshd, key(Path::new("/nonexistent/id_ed25519"))));
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("/nonexistent/id_ed25519"), "{e}");
}

#[test]
fn rejected_password_is_auth_and_not_shown() {
    let Some(sshd) = Sshd::start_with(SshdOptions { password_authentication: true, ..Default::default() }) else {
        return;
    };
    let password = "hunter2-Password-not-to-be-shown";
    let e = connect_err(&config(&sshd, Auth::Password(Secret::new(password))));
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("password"), "{e}");
    assert_no_secret(&e, password);
}

#[test]
fn unknown_host_prints_fingerprint_and_keyscan() {
    let Some(sshd) = Sshd::start() else { return };
    for known_hosts in [sshd.known_hosts_without_this_host(), sshd.data_dir().join("no-such-known_hosts")] {
        let mut config = config(&sshd, key(&sshd.key()));
        config.known_hosts = known_hosts.clone();
        let e = connect_err(&config);
        assert_eq!(e.kind(), ErrorKind::HostKey, "{e}");
        let text = e.to_string();
        assert!(text.contains("unknown host"), "{text}");
        assert!(text.contains(&sshd.host_key_fingerprint()), "{text}");
        let keyscan = format!("ssh-keyscan -p {} 127.0.0.1 >> {}", sshd.port(), known_hosts.display());
        assert!(text.contains(&keyscan), "{text}");
    }
}

#[test]
fn changed_host_key_is_refused_before_logging_in() {
    let Some(sshd) = Sshd::start() else { return };
    let mut config = config(&sshd, key(&sshd.key()));
    config.known_hosts = sshd.known_hosts_changed_key();
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::HostKey, "{e}");
    let text = e.to_string();
    assert!(text.contains("HOST KEY MISMATCH") && text.contains("man in the middle"), "{text}");
    assert!(text.contains(&sshd.host_key_fingerprint()), "{text}");
    // The authorized key was never offered (key_auth_connects sees this line).
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());

    let passphrase = "passphrase-never-sent-Q7";
    config.auth = Auth::KeyFile { path: sshd.encrypted_key(), passphrase: Some(Secret::new(passphrase)) };
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::HostKey, "{e}");
    assert_no_secret(&e, passphrase);
}

#[test]
fn host_known_by_another_key_type_is_refused() {
    let Some(sshd) = Sshd::start() else { return };
    let mut config = config(&sshd, key(&sshd.key()));
    config.known_hosts = sshd.known_hosts_other_key_type();
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::HostKey, "{e}");
    let text = e.to_string();
    assert!(text.contains("ssh-rsa") && text.contains("ssh-ed25519"), "{text}");
}

#[test]
fn server_with_several_keys_shows_the_known_one() {
    let Some(sshd) = Sshd::start_with(SshdOptions { all_host_key_types: true, ..Default::default() }) else {
        return;
    };
    for key_type in ["rsa", "ecdsa", "ed25519"] {
        let mut config = config(&sshd, key(&sshd.key()));
        config.known_hosts = sshd.known_hosts_of_type(key_type);
        Sftp::connect(&config).unwrap_or_else(|e| panic!("known by its {key_type} key: {e}"));
    }
}

#[test]
fn hashed_known_hosts_entry_is_accepted() {
    let Some(sshd) = Sshd::start() else { return };
    let mut config = config(&sshd, key(&sshd.key()));
    config.known_hosts = sshd.known_hosts_hashed();
    let hashed = std::fs::read_to_string(&config.known_hosts).unwrap();
    assert!(hashed.contains("|1|") && !hashed.contains("127.0.0.1"), "{hashed}");
    Sftp::connect(&config).unwrap();
}

#[test]
fn connection_refused_is_unreachable() {
    let Some(sshd) = Sshd::start() else { return };
    let mut config = config(&sshd, Auth::Password(Secret::new("pw-Refused-1")));
    config.port = test_servers::free_port();
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.to_string().starts_with(&format!("{}@127.0.0.1:{}: cannot connect", sshd.user(), config.port)), "{e}");
    assert_no_secret(&e, "pw-Refused-1");
}

#[test]
fn a_server_that_is_not_ssh_is_unreachable() {
    let Some(sshd) = Sshd::start() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let _ = conn.write_all(b"220 smtp.example ESMTP\r\n");
    });
    let mut config = config(&sshd, key(&sshd.key()));
    config.port = port;
    config.timeout = Duration::from_secs(5);
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("handshake"), "{e}");
    server.join().unwrap();
}

#[test]
fn a_silent_server_times_out_as_unreachable() {
    let Some(sshd) = Sshd::start() else { return };
    // The kernel completes the TCP handshake; nobody ever sends a banner.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config(&sshd, key(&sshd.key()));
    config.port = listener.local_addr().unwrap().port();
    config.timeout = Duration::from_millis(500);
    let start = std::time::Instant::now();
    let e = connect_err(&config);
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(start.elapsed() < Duration::from_secs(5), "the timeout was not applied: {:?}", start.elapsed());
    drop(listener);
}
