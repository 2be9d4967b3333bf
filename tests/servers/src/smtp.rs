//! An SMTP server on loopback for the tests of e-mail notifications:
//! aiosmtpd (PyPI, installed by `scripts/test.sh` into a venv of its own,
//! whose Python is `ORCHESTRATOR_SMTP_SERVER`) running `smtp_server.py`.
//!
//! AUTH PLAIN and LOGIN against the user and password of [`SmtpOptions`]
//! (MAIL is refused until then unless `require_auth` is off); TLS none,
//! STARTTLS (required before anything else, AUTH offered only after it) or
//! implicit (SMTPS), with a certificate for `127.0.0.1`/`localhost` signed by
//! a throw-away CA ([`SmtpServer::ca_pem_path`]). Each message accepted is
//! kept as received, with its envelope, in the server's temporary directory
//! ([`SmtpServer::messages`]). Stopped (SIGTERM) when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, AUTH allowed without TLS.
    None,
    /// STARTTLS offered and required before AUTH, MAIL, ... (the 587 way).
    StartTls,
    /// TLS from the first byte (SMTPS, the 465 way).
    Implicit,
}

impl SmtpTls {
    fn arg(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "implicit",
        }
    }
}

/// What [`SmtpServer::start_with`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpOptions {
    pub tls: SmtpTls,
    /// The one login AUTH PLAIN/LOGIN accepts.
    pub user: String,
    pub password: String,
    /// Refuse MAIL (`530 5.7.0 Authentication required`) until AUTH
    /// succeeded; off, anyone may send (AUTH is still offered).
    pub require_auth: bool,
}

impl Default for SmtpOptions {
    /// No TLS, user `backup` with password `secret`, AUTH required.
    fn default() -> SmtpOptions {
        SmtpOptions { tls: SmtpTls::None, user: "backup".into(), password: "secret".into(), require_auth: true }
    }
}

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM:<...>`, without the brackets).
    pub mail_from: String,
    /// The envelope recipients, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received (headers and body, CRLF line ends, dots
    /// unstuffed), as UTF-8 (lossy).
    pub data: String,
    /// The same bytes, exactly.
    pub raw: Vec<u8>,
    /// Who had authenticated, if anyone.
    pub auth_user: Option<String>,
    /// Whether it came over TLS (STARTTLS or implicit).
    pub tls: bool,
}

impl ReceivedMail {
    /// The first header `name` (any case) of the message, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.trim().eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }

    /// What follows the header (the raw body, still transfer-encoded).
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body)
    }
}

/// A running SMTP server, stopped when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    dir: TempDir,
    port: u16,
    options: SmtpOptions,
}

impl SmtpServer {
    /// Plain SMTP with the [default](SmtpOptions::default) login; `None`
    /// (after a `SKIPPED` line) when it is not installed and this is not CI.
    pub fn start() -> Option<SmtpServer> {
        SmtpServer::start_with(SmtpOptions::default())
    }

    /// STARTTLS required, with the default login.
    pub fn start_tls() -> Option<SmtpServer> {
        SmtpServer::start_with(SmtpOptions { tls: SmtpTls::StartTls, ..SmtpOptions::default() })
    }

    /// A server as `options` say.
    pub fn start_with(options: SmtpOptions) -> Option<SmtpServer> {
        let python = std::env::var_os("ORCHESTRATOR_SMTP_SERVER").map(PathBuf::from);
        let Some(python) = python.filter(|p| p.is_file()) else {
            let message = "the SMTP server is not installed (scripts/test.sh installs aiosmtpd into a venv and sets \
                           ORCHESTRATOR_SMTP_SERVER)";
            assert!(!crate::in_ci(), "{message}; CI=true needs it");
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("test-smtp-").tempdir().expect("temporary directory for SMTP");
        let spool = dir.path().join("spool");
        fs::create_dir(&spool).expect("spool directory");
        let port = crate::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_server.py");
        let mut command = Command::new(&python);
        command.arg(&script).arg(port.to_string()).arg(&spool).arg(options.tls.arg());
        if options.tls != SmtpTls::None {
            let (ca, cert, key) = crate::dovecot::make_certificates();
            fs::write(dir.path().join("ca.pem"), ca).expect("write CA");
            fs::write(dir.path().join("server.pem"), cert).expect("write certificate");
            fs::write(dir.path().join("server.key"), key).expect("write key");
            command.arg(dir.path().join("server.pem")).arg(dir.path().join("server.key"));
        }
        let log = fs::File::create(dir.path().join("server.log")).expect("creating server.log");
        let child = command
            .env("SMTP_USER", &options.user)
            .env("SMTP_PASSWORD", &options.password)
            .env("SMTP_REQUIRE_AUTH", if options.require_auth { "1" } else { "0" })
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
        let mut server = SmtpServer { child, dir, port, options };
        let started = Instant::now();
        while !spool.join("ready").exists() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the SMTP server exited ({status}); its log:\n{}", server.log());
            }
            assert!(started.elapsed() < START_TIMEOUT, "the SMTP server did not listen; its log:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// The port it listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn tls(&self) -> SmtpTls {
        self.options.tls
    }

    /// The login it accepts.
    pub fn user(&self) -> &str {
        &self.options.user
    }

    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// PEM of the CA that signed its certificate (for `127.0.0.1` and
    /// `localhost`); `None` without TLS.
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        (self.options.tls != SmtpTls::None).then(|| self.dir.path().join("ca.pem"))
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let spool = self.dir.path().join("spool");
        let mut envelopes: Vec<PathBuf> = fs::read_dir(&spool)
            .expect("the spool directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        envelopes.sort();
        envelopes
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path).expect("an envelope");
                let envelope: serde_json::Value = serde_json::from_str(&text).expect("envelope JSON");
                let raw = fs::read(path.with_extension("eml")).expect("the message beside its envelope");
                let string = |v: &serde_json::Value| v.as_str().map(str::to_owned);
                ReceivedMail {
                    mail_from: string(&envelope["mail_from"]).unwrap_or_default(),
                    rcpt_to: envelope["rcpt_to"]
                        .as_array()
                        .map_or(Vec::new(), |a| a.iter().filter_map(string).collect()),
                    data: String::from_utf8_lossy(&raw).into_owned(),
                    raw,
                    auth_user: string(&envelope["auth_user"]),
                    tls: envelope["tls"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }

    /// The messages once there are at least `count`; panics, with what came
    /// and the server's log, if they have not after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} of {count} mails came to port {} in {timeout:?}: {messages:#?}\nthe server's log:\n{}",
                    messages.len(),
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server has logged (sessions, AUTH outcomes, errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    fn base64(data: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }

    /// An SMTP client dialogue: send a line, read the (multi-line) reply.
    struct Dialogue<S: Read + Write> {
        stream: BufReader<S>,
    }

    impl<S: Read + Write> Dialogue<S> {
        fn new(stream: S) -> Self {
            Dialogue { stream: BufReader::new(stream) }
        }

        fn reply(&mut self) -> String {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                assert!(self.stream.read_line(&mut line).unwrap() > 0, "connection closed after {reply:?}");
                reply.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        }

        fn command(&mut self, line: &str) -> String {
            self.stream.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
            self.reply()
        }

        fn expect(&mut self, line: &str, code: &str) -> String {
            let reply = self.command(line);
            assert!(reply.starts_with(code), "{line:?} → {reply:?}");
            reply
        }

        /// AUTH PLAIN, MAIL, RCPT and DATA of one message.
        fn send(&mut self, user: &str, password: &str, from: &str, to: &[&str], message: &str) {
            self.expect(&format!("AUTH PLAIN {}", base64(format!("\0{user}\0{password}").as_bytes())), "235");
            self.expect(&format!("MAIL FROM:<{from}>"), "250");
            for rcpt in to {
                self.expect(&format!("RCPT TO:<{rcpt}>"), "250");
            }
            self.expect("DATA", "354");
            let end = if message.ends_with("\r\n") { "." } else { "\r\n." };
            self.expect(&format!("{message}{end}"), "250");
        }
    }

    fn connect(server: &SmtpServer) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    fn tls_client(server: &SmtpServer, tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let ca = server.ca_pem_path().expect("a TLS server has a CA");
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        rustls::StreamOwned::new(connection, tcp)
    }

    #[test]
    fn base64_encodes_like_rfc_4648() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn takes_a_mail_over_plain_smtp_after_auth() {
        let Some(server) = SmtpServer::start() else { return };
        assert_eq!(server.ca_pem_path(), None);
        let mut smtp = Dialogue::new(connect(&server));
        assert!(smtp.reply().starts_with("220 "));
        let ehlo = smtp.expect("EHLO client.test", "250");
        assert!(ehlo.contains("AUTH LOGIN PLAIN"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        smtp.expect("MAIL FROM:<nobody@example.org>", "530");
        smtp.expect(&format!("AUTH PLAIN {}", base64(b"\0backup\0wrong")), "535");
        let message = "From: Orchestrator <backup@example.org>\r\nTo: ops@example.org\r\nSubject: backup \
                       failed\r\n\r\nsource docs: failed\r\n..a line with a leading dot\r\n";
        smtp.send("backup", "secret", "backup@example.org", &["ops@example.org", "oncall@example.org"], message);
        smtp.expect("QUIT", "221");
        let mails = server.wait_for(1, Duration::from_secs(5));
        let mail = &mails[0];
        assert_eq!(mail.mail_from, "backup@example.org");
        assert_eq!(mail.rcpt_to, ["ops@example.org", "oncall@example.org"]);
        assert_eq!(mail.data, message.replace("\r\n..", "\r\n."));
        assert_eq!(mail.header("subject").as_deref(), Some("backup failed"));
        assert!(mail.body().starts_with("source docs: failed\r\n"));
        assert_eq!((mail.auth_user.as_deref(), mail.tls), (Some("backup"), false));
    }

    #[test]
    fn auth_login_works_and_open_relay_is_optional() {
        let options =
            SmtpOptions { user: "alice".into(), password: "pä ss".into(), require_auth: false, ..Default::default() };
        let Some(server) = SmtpServer::start_with(options) else { return };
        let mut smtp = Dialogue::new(connect(&server));
        smtp.reply();
        smtp.expect("EHLO client.test", "250");
        smtp.expect("MAIL FROM:<a@example.org>", "250");
        smtp.expect("RCPT TO:<b@example.org>", "250");
        smtp.expect("DATA", "354");
        smtp.expect("Subject: anonymous\r\n\r\nhi\r\n.", "250");
        smtp.expect("AUTH LOGIN", "334");
        smtp.expect(&base64(b"alice"), "334");
        smtp.expect(&base64("pä ss".as_bytes()), "235");
        let mails = server.wait_for(1, Duration::from_secs(5));
        assert_eq!(mails[0].auth_user, None);
        assert_eq!(mails[0].header("Subject").as_deref(), Some("anonymous"));
    }

    #[test]
    fn starttls_is_offered_and_required() {
        let Some(server) = SmtpServer::start_tls() else { return };
        assert!(server.ca_pem_path().is_some_and(|p| p.is_file()));
        let tcp = connect(&server);
        let mut smtp = Dialogue::new(tcp.try_clone().unwrap());
        assert!(smtp.reply().starts_with("220 "));
        let ehlo = smtp.expect("EHLO client.test", "250");
        assert!(ehlo.lines().any(|l| l.trim_end() == "250-STARTTLS"), "{ehlo}");
        assert!(!ehlo.contains("AUTH"), "AUTH offered before TLS: {ehlo}");
        smtp.expect(&format!("AUTH PLAIN {}", base64(b"\0backup\0secret")), "530");
        smtp.expect("MAIL FROM:<a@example.org>", "530");
        smtp.expect("STARTTLS", "220");
        drop(smtp);
        let mut smtp = Dialogue::new(tls_client(&server, tcp));
        let ehlo = smtp.expect("EHLO client.test", "250");
        assert!(ehlo.contains("AUTH LOGIN PLAIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
        smtp.send("backup", "secret", "backup@example.org", &["ops@example.org"], "Subject: over TLS\r\n\r\nok\r\n");
        let mails = server.wait_for(1, Duration::from_secs(5));
        assert_eq!((mails[0].tls, mails[0].auth_user.as_deref()), (true, Some("backup")));
    }

    #[test]
    fn implicit_tls_speaks_tls_first() {
        let options = SmtpOptions { tls: SmtpTls::Implicit, ..Default::default() };
        let Some(server) = SmtpServer::start_with(options) else { return };
        let mut smtp = Dialogue::new(tls_client(&server, connect(&server)));
        assert!(smtp.reply().starts_with("220 "));
        let ehlo = smtp.expect("EHLO client.test", "250");
        assert!(ehlo.contains("AUTH LOGIN PLAIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
        smtp.send("backup", "secret", "backup@example.org", &["ops@example.org"], "Subject: smtps\r\n\r\nok\r\n");
        let mails = server.wait_for(1, Duration::from_secs(5));
        assert_eq!((mails[0].tls, mails[0].rcpt_to.as_slice()), (true, &["ops@example.org".to_owned()][..]));
    }
}
