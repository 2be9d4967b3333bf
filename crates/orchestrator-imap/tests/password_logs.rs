//! async-imap logs every command it sends (at trace level). The login hands
//! it a placeholder, so no log line holds the password: this binary installs a
//! logger that keeps every record of every level and looks. A binary of its
//! own, because a logger is global to the process.

use std::sync::Mutex;

use orchestrator_imap::{Client, ErrorKind, Password, Security, ServerConfig};
use test_servers::dovecot::Dovecot;

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOGS.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

fn config(server: &Dovecot, security: Security, user: &str, password: &str) -> ServerConfig {
    let mut config = ServerConfig::new("127.0.0.1", security, user, Password::new(password));
    config.port = if security == Security::Tls { server.imaps_port() } else { server.imap_port() };
    config.ca_file = Some(server.ca_file().to_path_buf());
    config
}

#[tokio::test]
async fn no_log_record_holds_a_password() {
    log::set_boxed_logger(Box::new(Capture)).expect("no other logger");
    log::set_max_level(log::LevelFilter::Trace);
    let Some(server) = Dovecot::start() else { return };
    // Quotes and backslashes: the substitution must quote like async-imap does.
    let (good, wrong) = ("G00d-\"pass\\word\" x", "Wr0ng-\"pass\\word");
    server.add_user("alice", good);
    for security in [Security::Tls, Security::StartTls, Security::Plain] {
        let err = match Client::connect(&config(&server, security, "alice", wrong)).await {
            Ok(_) => panic!("{security:?}: a wrong password was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        let mut client = Client::connect(&config(&server, security, "alice", good))
            .await
            .unwrap_or_else(|e| panic!("{security:?}: {e}"));
        client.examine("INBOX").await.unwrap();
        client.logout().await.unwrap();
    }
    let logs = LOGS.lock().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("LOGIN") && l.contains("alice")),
        "async-imap logged no LOGIN command, so this test proves nothing: {logs:#?}"
    );
    for line in logs.iter() {
        for secret in ["G00d", "Wr0ng"] {
            assert!(!line.contains(secret), "a password is in a log line: {line}");
        }
    }
}
