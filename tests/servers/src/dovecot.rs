//! Dovecot (Debian's dovecot-imapd) on loopback: see the crate docs.
//!
//! Each [`Dovecot`] is a private instance: its own config, runtime and state
//! directories, log file, mail and free ports, so it neither needs nor
//! disturbs a system Dovecot that the package may have started on 143/993.
//! TLS uses a CA made for this instance ([`Dovecot::ca_file`]) and a server
//! certificate for `127.0.0.1` and `localhost`.
//!
//! What the server did is read back from its log: `imap_logout_format` writes
//! each session's fetch counters when it ends ([`Dovecot::sessions`]), which is
//! how a test counts the message bodies a run fetched.
//!
//! The server runs in a half-hour zone ([`SERVER_TZ`]), not UTC.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require_program};

const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVEADM: &str = "/usr/bin/doveadm";
const PACKAGE: &str = "dovecot-imapd";

/// The server's zone: UTC+05:30 (POSIX form, no zoneinfo needed), so that
/// INTERNALDATEs come back with `+0530` and a client that ignores the zone fails.
pub const SERVER_TZ: &str = "IST-05:30";

/// The mail owner when the tests run as root: Dovecot refuses uid 0 for mail.
const ROOT_MAIL_UID: u32 = 65534;

pub struct Dovecot {
    child: Child,
    config: PathBuf,
    log: PathBuf,
    passwd: PathBuf,
    ca: PathBuf,
    imap_port: u16,
    imaps_port: u16,
    dir: tempfile::TempDir,
}

/// One finished IMAP session, from its `Disconnected:` log line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionStats {
    pub user: String,
    /// Messages whose body (or whole text) was sent: `BODY[]`, `BODY.PEEK[]`, `RFC822`, ...
    pub fetch_body_count: u64,
    pub fetch_body_bytes: u64,
    /// Messages whose header alone was sent.
    pub fetch_hdr_count: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

fn user_name(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[2] == uid.to_string()).then(|| fields[0].to_owned())
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| panic!("no user name for uid {uid} in /etc/passwd"))
}

fn user_exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd").is_ok_and(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
}

/// A CA and a server certificate signed by it, as PEM: (ca cert, server cert, server key).
pub(crate) fn make_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "orchestrator test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn config_text(dir: &Path, imap_port: u16, imaps_port: u16) -> String {
    let root = rustix::process::geteuid().is_root();
    let me = user_name(rustix::process::geteuid().as_raw());
    // As root, Dovecot's own unprivileged users (made by dovecot-core) run the
    // internal and login processes, and mail belongs to nobody; as anyone
    // else, everything runs as that user and nothing may chroot.
    let (internal, login, mail_uid, mail_gid) = if root {
        let internal = if user_exists("dovecot") { "dovecot".to_owned() } else { user_name(ROOT_MAIL_UID) };
        let login = if user_exists("dovenull") { "dovenull".to_owned() } else { user_name(ROOT_MAIL_UID) };
        (internal, login, ROOT_MAIL_UID, ROOT_MAIL_UID)
    } else {
        let gid = rustix::process::getegid().as_raw();
        (me.clone(), me.clone(), rustix::process::geteuid().as_raw(), gid)
    };
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(
        c,
        r#"# Written by test-servers for one test run; nothing else reads it.
instance_name = orchestrator-test-{imap_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
first_valid_gid = 0
mail_max_userip_connections = 100
# Test mail is thrown away: no fsync per saved message.
mail_fsync = never
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
imap_logout_format = in=%i out=%o fetch_hdr_count=%{{fetch_hdr_count}} fetch_body_count=%{{fetch_body_count}} fetch_body_bytes=%{{fetch_body_bytes}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}"#,
        internal_group = if root { internal.clone() } else { user_name_group() },
        login_chroot = if root { "" } else { "  chroot =\n" },
    );
    if !root {
        c.push_str("\nservice auth-worker {\n  user = $default_internal_user\n}\n");
    }
    c
}

/// The primary group name of the current user (for a non-root run).
fn user_name_group() -> String {
    let gid = rustix::process::getegid().as_raw().to_string();
    fs::read_to_string("/etc/group")
        .ok()
        .and_then(|g| {
            g.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() > 2 && f[2] == gid).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| user_name(rustix::process::geteuid().as_raw()))
}

impl Dovecot {
    /// A running private Dovecot, or `None` (after a `SKIPPED` line) when it is
    /// not installed outside CI. Panics, with the log, if it does not start.
    pub fn start() -> Option<Dovecot> {
        let dovecot = require_program(&[DOVECOT], PACKAGE)?;
        require_program(&[DOVEADM], "dovecot-core")?;
        let dir = tempfile::Builder::new().prefix("dovecot-").tempdir_in(scratch_parent()).expect("temp dir");
        // Dovecot's unprivileged processes (and mail as nobody) must reach into it.
        set_mode(dir.path(), 0o755);
        let imap_port = free_port();
        let imaps_port = loop {
            let p = free_port();
            if p != imap_port {
                break p;
            }
        };
        let (ca, cert, key) = make_certificates();
        let path = |name: &str| dir.path().join(name);
        fs::write(path("ca.pem"), ca).expect("write CA");
        fs::write(path("server.pem"), cert).expect("write certificate");
        fs::write(path("server.key"), key).expect("write key");
        set_mode(&path("server.key"), 0o600);
        fs::write(path("passwd"), "").expect("write passwd");
        set_mode(&path("passwd"), 0o644);
        let mail = path("mail");
        fs::create_dir(&mail).expect("mail dir");
        if rustix::process::geteuid().is_root() {
            let id = Some(ROOT_MAIL_UID);
            std::os::unix::fs::chown(&mail, id, id).expect("chown mail dir");
        }
        fs::write(path("dovecot.conf"), config_text(dir.path(), imap_port, imaps_port)).expect("write config");
        fs::write(path("dovecot.log"), "").expect("create log");
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(path("dovecot.conf"))
            .env("TZ", SERVER_TZ)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(path("dovecot.stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn dovecot");
        let server = Dovecot {
            child,
            config: path("dovecot.conf"),
            log: path("dovecot.log"),
            passwd: path("passwd"),
            ca: path("ca.pem"),
            imap_port,
            imaps_port,
            dir,
        };
        server.wait_ready();
        Some(server)
    }

    /// Until the plain port greets with capabilities: a greeting of "Waiting
    /// for authentication process" means auth is not up yet.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.imap_port)) {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut line = String::new();
                let mut reader = BufReader::new(stream);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line.contains("[CAPABILITY") {
                        return;
                    }
                    line.clear();
                }
            }
            assert!(Instant::now() < deadline, "Dovecot did not become ready in 20 s\n{}", self.diagnostics());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn diagnostics(&self) -> String {
        let stderr = fs::read_to_string(self.dir.path().join("dovecot.stderr")).unwrap_or_default();
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- dovecot stderr ---\n{stderr}\n--- dovecot.log ---\n{log}")
    }

    /// The port with plain IMAP and STARTTLS (the 143 of this instance).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The port with implicit TLS (the 993 of this instance).
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// PEM of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// Adds a login. Dovecot re-reads the passwd file when it changes.
    pub fn add_user(&self, name: &str, password: &str) {
        assert!(!name.contains([':', '\n']) && !password.contains([':', '\n']), "passwd-file cannot hold {name:?}");
        let mut file = fs::OpenOptions::new().append(true).open(&self.passwd).expect("open passwd");
        writeln!(file, "{name}:{{PLAIN}}{password}::::::").expect("write passwd");
    }

    /// Runs `doveadm` against this instance; panics with its output if it fails.
    pub fn doveadm(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(DOVEADM)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn doveadm");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input).expect("write to doveadm");
        }
        let output = child.wait_with_output().expect("doveadm");
        assert!(
            output.status.success(),
            "doveadm {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.diagnostics()
        );
        output
    }

    /// Creates a folder by its UTF-8 name (`Archiv/2024`, `Entwürfe`); parents are made too.
    pub fn create_folder(&self, user: &str, name: &str) {
        self.doveadm(&["mailbox", "create", "-u", user, name], None);
    }

    /// Deletes a folder and its messages, behind any client's back.
    pub fn delete_folder(&self, user: &str, name: &str) {
        self.doveadm(&["mailbox", "delete", "-u", user, name], None);
    }

    /// Delivers one message into a folder (UTF-8 name), as a mail server would.
    pub fn deliver(&self, user: &str, folder: &str, message: &[u8]) {
        self.doveadm(&["save", "-u", user, "-m", folder], Some(message));
    }

    /// `(uid, flags)` of every message in a folder, read by doveadm, not over IMAP.
    pub fn flags(&self, user: &str, folder: &str) -> Vec<(u32, String)> {
        let out = self.doveadm(&["-f", "tab", "fetch", "-u", user, "uid flags", "mailbox", folder, "all"], None);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (uid, flags) = line.split_once('\t')?;
                Some((uid.trim().parse().ok()?, flags.trim().to_owned()))
            })
            .collect()
    }

    /// Every IMAP session that has ended so far, in log order.
    pub fn sessions(&self) -> Vec<SessionStats> {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().filter_map(parse_disconnect).collect()
    }

    /// The sessions once at least `count` have ended (their log lines are
    /// written just after the client sees the LOGOUT answer).
    pub fn wait_for_sessions(&self, count: usize) -> Vec<SessionStats> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sessions = self.sessions();
            if sessions.len() >= count {
                return sessions;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} sessions ended\n{}",
                sessions.len(),
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `... imap(alice)<123><abc>: Info: Disconnected: Logged out in=95 out=949 fetch_hdr_count=0 ...`
fn parse_disconnect(line: &str) -> Option<SessionStats> {
    let rest = &line[line.find(" imap(")? + 6..];
    let (user, rest) = rest.split_once(')')?;
    if !rest.contains("Disconnected") {
        return None;
    }
    let mut stats = SessionStats { user: user.to_owned(), ..SessionStats::default() };
    let mut found = false;
    for word in rest.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else { continue };
        let Ok(value) = value.trim_end_matches(',').parse::<u64>() else { continue };
        let field = match key {
            "in" => &mut stats.bytes_in,
            "out" => &mut stats.bytes_out,
            "fetch_hdr_count" => &mut stats.fetch_hdr_count,
            "fetch_body_count" => &mut stats.fetch_body_count,
            "fetch_body_bytes" => &mut stats.fetch_body_bytes,
            _ => continue,
        };
        *field = value;
        found |= key == "fetch_body_count";
    }
    found.then_some(stats)
}

/// Where instances live: tmpfs when it has room, since a maildir costs a few
/// file operations per message and thousands of messages on a disk take
/// seconds; else the usual temporary directory.
fn scratch_parent() -> PathBuf {
    const ROOM: u64 = 1 << 30;
    let shm = Path::new("/dev/shm");
    match rustix::fs::statvfs(shm) {
        Ok(st) if st.f_bavail.saturating_mul(st.f_frsize) >= ROOM && std::env::var_os("TMPDIR").is_none() => {
            shm.to_path_buf()
        }
        _ => std::env::temp_dir(),
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker processes; SIGKILL would orphan them.
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

    #[test]
    fn disconnect_lines_are_parsed() {
        let line = "Dec 01 08:20:05 imap(alice)<21168><UKiQMY5hCK9/AAAB>: Info: Disconnected: Logged out \
                    in=95 out=949 fetch_hdr_count=2 fetch_body_count=3 fetch_body_bytes=1200";
        let stats = parse_disconnect(line).unwrap();
        assert_eq!(stats.user, "alice");
        assert_eq!((stats.fetch_body_count, stats.fetch_body_bytes, stats.fetch_hdr_count), (3, 1200, 2));
        assert_eq!((stats.bytes_in, stats.bytes_out), (95, 949));
        assert_eq!(parse_disconnect("Dec 01 imap-login: Info: Login: user=<alice>"), None);
    }

    #[test]
    fn starts_and_serves_a_user() {
        let Some(server) = Dovecot::start() else { return };
        server.add_user("carol", "pw");
        server.create_folder("carol", "Archiv/2024");
        server.deliver("carol", "Archiv/2024", b"Subject: hi\r\n\r\nhello\r\n");
        let flags = server.flags("carol", "Archiv/2024");
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert!(!flags[0].1.contains("\\Seen"), "{flags:?}");
        let stream = TcpStream::connect(("127.0.0.1", server.imap_port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut writer = stream.try_clone().unwrap();
        writer
            .write_all(
                b"a LOGIN carol pw\r\nb EXAMINE Archiv/2024\r\nc FETCH 1 (INTERNALDATE BODY.PEEK[])\r\nd LOGOUT\r\n",
            )
            .unwrap();
        let mut reply = String::new();
        let mut reader = BufReader::new(stream);
        while reader.read_line(&mut reply).is_ok_and(|n| n > 0) {}
        assert!(reply.contains("d OK"), "{reply}");
        assert!(reply.contains(" +0530\""), "the server is not in SERVER_TZ: {reply}");
        let sessions = server.wait_for_sessions(1);
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        assert_eq!((sessions[0].user.as_str(), sessions[0].fetch_body_count), ("carol", 1), "{sessions:?}");
        let flags = server.flags("carol", "Archiv/2024");
        assert!(!flags[0].1.contains("\\Seen"), "BODY.PEEK set \\Seen: {flags:?}");
    }
}
