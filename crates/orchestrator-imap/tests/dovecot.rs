//! The client against a real Dovecot (tests/servers), never a mock: each test
//! starts its own instance on free loopback ports. Outside CI a machine
//! without Dovecot skips them; under `CI=true` they must run.

use std::time::{Duration, Instant};

use orchestrator_imap::{Client, ErrorKind, ImapError, Password, Security, ServerConfig, utf7};
use test_servers::dovecot::Dovecot;

const PASSWORD: &str = "s3cret-Pa55w0rd";

fn config(server: &Dovecot, security: Security, user: &str, password: &str) -> ServerConfig {
    let mut config = ServerConfig::new("127.0.0.1", security, user, Password::new(password));
    config.port = match security {
        Security::Tls => server.imaps_port(),
        Security::StartTls | Security::Plain => server.imap_port(),
    };
    config.ca_file = Some(server.ca_file().to_path_buf());
    config.connect_timeout = Duration::from_secs(10);
    config
}

/// A server with one user, and a TLS configuration for that user.
fn setup(user: &str) -> Option<(Dovecot, ServerConfig)> {
    let server = Dovecot::start()?;
    server.add_user(user, PASSWORD);
    let config = config(&server, Security::Tls, user, PASSWORD);
    Some((server, config))
}

async fn connect(config: &ServerConfig) -> Client {
    Client::connect(config).await.unwrap_or_else(|e| panic!("connect: {e}"))
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: rcpt@example.org\r\nSubject: message {i}\r\n\
         Message-ID: <{i}@orchestrator.test>\r\n\r\nBody of message {i}.\r\n"
    )
    .into_bytes()
}

fn expect_err<T>(result: Result<T, ImapError>) -> ImapError {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

// --- connection security -------------------------------------------------

#[tokio::test]
async fn implicit_tls_with_the_ca_file() {
    let Some((server, config)) = setup("tls") else { return };
    let mut client = connect(&config).await;
    let folders = client.list_folders().await.unwrap();
    assert!(folders.iter().any(|f| f.raw == "INBOX" && f.selectable), "{folders:?}");
    client.logout().await.unwrap();
    let log = std::fs::read_to_string(server.log_file()).unwrap();
    assert!(log.lines().any(|l| l.contains("Login: user=<tls>") && l.contains("TLS")), "{log}");
}

#[tokio::test]
async fn starttls_upgrades_before_login() {
    let Some(server) = Dovecot::start() else { return };
    server.add_user("starttls", PASSWORD);
    let mut client = connect(&config(&server, Security::StartTls, "starttls", PASSWORD)).await;
    client.examine("INBOX").await.unwrap();
    client.logout().await.unwrap();
    let log = std::fs::read_to_string(server.log_file()).unwrap();
    let login = log.lines().find(|l| l.contains("Login: user=<starttls>")).expect("login logged");
    assert!(login.contains("TLS"), "the login was not over TLS: {login}");
}

#[tokio::test]
async fn plain_is_allowed_to_loopback() {
    let Some(server) = Dovecot::start() else { return };
    server.add_user("plain", PASSWORD);
    for host in ["127.0.0.1", "localhost"] {
        let mut config = config(&server, Security::Plain, "plain", PASSWORD);
        config.host = host.to_owned();
        let mut client = Client::connect(&config).await.unwrap_or_else(|e| panic!("{host}: {e}"));
        client.examine("INBOX").await.unwrap();
        client.logout().await.unwrap();
    }
}

#[tokio::test]
async fn plain_to_a_network_address_is_refused_without_connecting() {
    // 192.0.2.0/24 is TEST-NET-1: an address literal, so no DNS either. The
    // check comes before any connection attempt, so nothing is sent anywhere.
    let mut config = ServerConfig::new("192.0.2.1", Security::Plain, "alice", Password::new(PASSWORD));
    config.connect_timeout = Duration::from_secs(30);
    let started = Instant::now();
    let err = expect_err(Client::connect(&config).await);
    assert!(started.elapsed() < Duration::from_secs(1), "it tried to connect");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(text.contains("192.0.2.1:143") && text.contains("loopback"), "{text}");
    assert!(text.contains("\"tls\"") && text.contains("\"starttls\""), "{text}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let Some((_server, mut config)) = setup("untrusted") else { return };
    config.ca_file = None; // the system roots do not know the test CA
    let err = expect_err(Client::connect(&config).await);
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{}", config.port)), "{text}");
    assert!(text.contains("not trusted") && text.contains("ca_file"), "{text}");

    config.security = Security::StartTls;
    config.port = _server.imap_port();
    let err = expect_err(Client::connect(&config).await);
    assert_eq!(err.kind(), ErrorKind::Tls, "STARTTLS: {err}");
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_is_a_config_error() {
    let Some((_server, mut config)) = setup("badca") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    config.ca_file = Some(path);
    let err = expect_err(Client::connect(&config).await);
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");
}

// --- errors a person can act on ------------------------------------------

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_names_the_server_not_the_password() {
    let Some((server, _)) = setup("alice") else { return };
    let wrong = "Wr0ng-Passw0rd";
    for security in [Security::Tls, Security::StartTls, Security::Plain] {
        let config = config(&server, security, "alice", wrong);
        let err = expect_err(Client::connect(&config).await);
        assert_eq!(err.kind(), ErrorKind::Auth, "{security:?}: {err}");
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        assert!(text.contains(&format!("127.0.0.1:{}", config.port)), "{text}");
        assert!(text.contains("alice") && text.contains("password"), "{text}");
        for printed in [&text, &debug] {
            assert!(!printed.contains("Wr0ng"), "password leaked: {printed}");
        }
    }
}

#[tokio::test]
async fn a_server_that_never_greets_times_out() {
    // Accepts (the kernel does, from the backlog) but never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = ServerConfig::new("127.0.0.1", Security::Plain, "alice", Password::new(PASSWORD));
    config.port = listener.local_addr().unwrap().port();
    config.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = expect_err(Client::connect(&config).await);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
}

#[test]
fn the_client_and_its_futures_can_move_between_threads() {
    fn is_send<T: Send>(_: &T) {}
    let config = ServerConfig::new("127.0.0.1", Security::Tls, "alice", Password::new(PASSWORD));
    is_send(&Client::connect(&config));
    fn client_is_send<T: Send>() {}
    client_is_send::<Client>();
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let port = test_servers::free_port();
    let mut config = ServerConfig::new("127.0.0.1", Security::Tls, "alice", Password::new(PASSWORD));
    config.port = port;
    let err = expect_err(Client::connect(&config).await);
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"), "{text}");
}

#[tokio::test]
async fn an_unknown_host_name_is_unreachable() {
    let config = ServerConfig::new("no-such-host.invalid", Security::Tls, "alice", Password::new(PASSWORD));
    let err = expect_err(Client::connect(&config).await);
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("no-such-host.invalid:993"), "{err}");
}

// --- folders -------------------------------------------------------------

#[tokio::test]
async fn nested_and_non_ascii_folders_are_listed_and_decoded() {
    let Some((server, config)) = setup("folders") else { return };
    for name in ["Archiv/2024", "Entwürfe", "日本語", "Tom & Jerry"] {
        server.create_folder("folders", name);
    }
    let mut client = connect(&config).await;
    let folders = client.list_folders().await.unwrap();
    let find = |name: &str| {
        folders.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} not listed: {folders:#?}"))
    };
    assert_eq!(find("Entwürfe").raw, "Entw&APw-rfe");
    assert_eq!(find("日本語").raw, "&ZeVnLIqe-");
    assert_eq!(find("Tom & Jerry").raw, "Tom &- Jerry");
    let nested = find("Archiv/2024");
    assert_eq!(nested.delimiter, Some('/'));
    assert!(nested.selectable);
    // The parent was never created: it exists only as a \Noselect name.
    assert!(!find("Archiv").selectable, "{folders:#?}");
    for folder in &folders {
        assert_eq!(utf7::encode(&folder.name), folder.raw);
        if folder.selectable {
            client.examine(&folder.raw).await.unwrap_or_else(|e| panic!("{}: {e}", folder.name));
        }
    }
    client.logout().await.unwrap();
}

#[tokio::test]
async fn a_folder_deleted_after_listing_is_not_found() {
    let Some((server, config)) = setup("vanish") else { return };
    server.create_folder("vanish", "Weg damit");
    let mut client = connect(&config).await;
    let folders = client.list_folders().await.unwrap();
    let folder = folders.iter().find(|f| f.name == "Weg damit").expect("listed").clone();
    server.delete_folder("vanish", "Weg damit");
    let err = expect_err(client.examine(&folder.raw).await);
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("Weg damit"), "{err}");
    // The connection is still good afterwards.
    client.examine("INBOX").await.unwrap();
    let err = expect_err(client.append(&folder.raw, &[], 0, &message(1)).await);
    assert_eq!(err.kind(), ErrorKind::NotFound, "append: {err}");
    client.logout().await.unwrap();
}

// --- messages ------------------------------------------------------------

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 38);
    for (i, chunk) in data.chunks(3).enumerate() {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for k in 0..4 {
            out.push(if k <= chunk.len() { ALPHABET[(n >> (18 - 6 * k)) as usize & 63] } else { b'=' });
        }
        if i % 19 == 18 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn eight_bit_headers_and_a_10_mib_attachment_are_fetched_byte_exact() {
    let Some((server, config)) = setup("exact") else { return };
    let eight_bit =
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\
          X-Latin1: caf\xe9 cr\xe8me\r\nTo: r@example.org\r\n\r\n\xe4\xf6\xfc raw 8-bit body\r\n"
            .to_vec();
    server.deliver("exact", "INBOX", &eight_bit);
    let mut big = b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n\
        --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    big.extend_from_slice(&base64_lines(&pseudo_random(10 << 20)));
    big.extend_from_slice(b"--b--\r\n");

    let mut client = connect(&config).await;
    client.append("INBOX", &[], 1_700_000_000, &big).await.unwrap();
    let status = client.examine("INBOX").await.unwrap();
    assert_eq!((status.exists, status.uid_next), (2, 3));
    let metas = client.fetch_meta(1..=2).await.unwrap();
    let bodies = client.fetch_bodies(&[1, 2]).await.unwrap();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].0, 1);
    assert!(bodies[0].1 == eight_bit, "8-bit message differs:\n{}", String::from_utf8_lossy(&bodies[0].1));
    assert_eq!(bodies[1].0, 2);
    assert_eq!(bodies[1].1.len(), big.len());
    assert!(bodies[1].1 == big, "the large message differs");
    for (meta, (_, body)) in metas.iter().zip(&bodies) {
        assert_eq!(meta.size, body.len() as u64, "RFC822.SIZE is the fetched length");
    }
    client.logout().await.unwrap();
}

#[tokio::test]
async fn examine_and_fetch_never_set_seen() {
    let Some((server, config)) = setup("seen") else { return };
    for i in 0..3 {
        server.deliver("seen", "INBOX", &message(i));
    }
    let mut client = connect(&config).await;
    client.examine("INBOX").await.unwrap();
    assert_eq!(client.fetch_bodies(&[1, 2, 3]).await.unwrap().len(), 3);
    let metas = client.fetch_meta(1..=3).await.unwrap();
    client.logout().await.unwrap();
    assert_eq!(metas.len(), 3);
    for meta in &metas {
        assert!(!meta.flags.iter().any(|f| f == "\\Seen"), "{meta:?}");
    }
    // Read back by doveadm, not through the client under test.
    let flags = server.flags("seen", "INBOX");
    assert_eq!(flags.len(), 3);
    for (uid, flags) in flags {
        assert!(!flags.contains("\\Seen"), "uid {uid}: {flags}");
    }
}

#[tokio::test]
async fn fetched_bodies_are_counted_by_the_server() {
    let Some((server, config)) = setup("count") else { return };
    for i in 0..5 {
        server.deliver("count", "INBOX", &message(i));
    }
    let mut client = connect(&config).await;
    client.examine("INBOX").await.unwrap();
    client.fetch_meta(1..=5).await.unwrap();
    let bodies = client.fetch_bodies(&[2, 4, 5, 99]).await.unwrap();
    assert_eq!(bodies.iter().map(|(uid, _)| *uid).collect::<Vec<_>>(), [2, 4, 5], "UID 99 does not exist");
    client.logout().await.unwrap();
    let sessions = server.wait_for_sessions(1);
    let total: u64 = sessions.iter().filter(|s| s.user == "count").map(|s| s.fetch_body_count).sum();
    assert_eq!(total, 3, "{sessions:?}");
    let bytes: u64 = sessions.iter().map(|s| s.fetch_body_bytes).sum();
    assert_eq!(bytes, bodies.iter().map(|(_, b)| b.len() as u64).sum::<u64>(), "{sessions:?}");
}

#[tokio::test]
async fn fetch_meta_on_thousands_of_messages() {
    const COUNT: usize = 3000;
    let Some((server, config)) = setup("many") else { return };
    let mut client = connect(&config).await;
    client.create_folder("Bulk").await.unwrap();
    let base = 1_600_000_000i64;
    let mut expected = Vec::new();
    for i in 0..COUNT {
        let flags: Vec<String> = match i % 4 {
            0 => vec![],
            1 => vec!["\\Seen".into()],
            2 => vec!["\\Seen".into(), "\\Flagged".into()],
            _ => vec!["$Label1".into(), "\\Answered".into()],
        };
        let body = message(i);
        let date = base + (i as i64) * 3_607;
        client.append("Bulk", &flags, date, &body).await.unwrap();
        expected.push((flags, date, body.len() as u64));
    }
    let status = client.examine("Bulk").await.unwrap();
    assert_eq!(status.exists as usize, COUNT);
    assert_eq!(status.uid_next as usize, COUNT + 1);
    let metas = client.fetch_meta(1..=status.uid_next - 1).await.unwrap();
    assert_eq!(metas.len(), COUNT);
    for (i, (meta, (flags, date, size))) in metas.iter().zip(&expected).enumerate() {
        assert_eq!(meta.uid as usize, i + 1);
        let mut got: Vec<&str> = meta.flags.iter().map(String::as_str).collect();
        let mut want: Vec<&str> = flags.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "uid {}", meta.uid);
        assert_eq!(meta.internal_date, *date, "uid {}", meta.uid);
        assert_eq!(meta.size, *size, "uid {}", meta.uid);
    }
    // A UID set (not a range) and UIDs past the end.
    let some = client.fetch_meta(&vec![5, 7, 8, 9, 2999, 3000, 3001, 40_000]).await.unwrap();
    assert_eq!(some.iter().map(|m| m.uid).collect::<Vec<_>>(), [5, 7, 8, 9, 2999, 3000]);
    // A range wholly past the end is empty (no `*`, which would match the last message).
    assert!(client.fetch_meta(3001..=4000).await.unwrap().is_empty());
    client.logout().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn append_round_trips_flags_and_internal_date() {
    let Some((server, config)) = setup("restore") else { return };
    let mut client = connect(&config).await;
    client.create_folder("Wiederhergestellt/Entw&APw-rfe").await.unwrap();
    client.create_folder("Wiederhergestellt/Entw&APw-rfe").await.expect("creating an existing folder is fine");
    let raw = utf7::encode("Wiederhergestellt/Entwürfe");
    let flags: Vec<String> =
        ["\\Seen", "\\Flagged", "\\Draft", "$Forwarded", "Junk", "\\Recent"].iter().map(|s| s.to_string()).collect();
    let date = 1_234_567_890; // 2009-02-13 23:31:30 UTC; the server answers in +0530
    let body = message(42);
    client.append(&raw, &flags, date, &body).await.unwrap();
    client.append(&raw, &[], -86_400, &message(43)).await.unwrap(); // before the epoch
    client.examine(&raw).await.unwrap();
    let metas = client.fetch_meta(1..=2).await.unwrap();
    assert_eq!(metas.len(), 2);
    let mut got = metas[0].flags.clone();
    got.sort();
    // Dovecot answers BAD to `\Recent` in APPEND, so the append succeeding shows it was dropped;
    // and fetch_meta leaves out the \Recent the server sets, which is not the user's.
    assert_eq!(got, ["$Forwarded", "Junk", "\\Draft", "\\Flagged", "\\Seen"]);
    assert_eq!(metas[0].internal_date, date);
    assert_eq!(metas[1].internal_date, -86_400);
    assert_eq!(client.fetch_bodies(&[1]).await.unwrap(), vec![(1, body)]);
    client.logout().await.unwrap();
    let log = std::fs::read_to_string(server.log_file()).unwrap();
    assert!(!log.contains(" Error:"), "{log}");
}
