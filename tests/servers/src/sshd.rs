//! OpenSSH's sshd (Debian's openssh-server) on loopback: see the crate docs.
//!
//! Everything sshd needs lives in one temporary directory: its host key, its
//! config, its pid file, the `authorized_keys` of the user running the tests,
//! and the client's key pairs and `known_hosts` files. So a test never reads
//! or changes `~/.ssh` or `/etc/ssh`, and a system sshd on port 22 (Debian's
//! postinst may have started one) is neither needed nor disturbed.
//!
//! sshd runs as whoever runs the tests and lets in only that user. CI runs as
//! root, hence `PermitRootLogin prohibit-password`: keys only.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The passphrase of [`Sshd::encrypted_key`].
pub const KEY_PASSPHRASE: &str = "correct horse battery staple";

/// The sshd binary; sshd re-executes itself, so it needs the absolute path.
const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// How long sshd may take to accept connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Tries at a free port: another process can take it between our check and
/// sshd's bind.
const START_ATTEMPTS: usize = 3;

/// What a test needs the server to allow beyond public keys.
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// Offer password authentication (sshd still refuses it for root:
    /// `PermitRootLogin prohibit-password`), so a test can send a password
    /// and see it rejected.
    pub password_authentication: bool,
    /// Serve SFTP read-only (`internal-sftp -R`): every write is refused
    /// with "permission denied", which root (as CI runs) otherwise never sees.
    pub read_only: bool,
    /// SFTP requests the server refuses (`internal-sftp -P`), such as
    /// `posix-rename`, to test a client's fallback for servers without it.
    pub denied_sftp_requests: Vec<String>,
    /// Give the server RSA and ECDSA host keys besides Ed25519, as most
    /// real servers have, so a client known by one of them must ask for it.
    pub all_host_key_types: bool,
}

/// A running sshd on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Sshd {
    // Declared before `dir`, so sshd is gone before its files are.
    child: Child,
    dir: TempDir,
    port: u16,
    user: String,
}

impl Sshd {
    /// Start sshd with key authentication only; `None` (after a `SKIPPED`
    /// line) when openssh-server is not installed and this is not CI.
    pub fn start() -> Option<Sshd> {
        Sshd::start_with(SshdOptions::default())
    }

    /// Start sshd allowing what `options` asks for.
    pub fn start_with(options: SshdOptions) -> Option<Sshd> {
        let sshd = crate::require_program(&[SSHD], "openssh-server")?;
        crate::require_program(&[SSH_KEYGEN], "openssh-client")?;
        // sshd's privilege separation needs this directory; it is normally
        // created by the system service, which may never have run here.
        if !Path::new("/run/sshd").is_dir() {
            fs::create_dir_all("/run/sshd").expect("creating /run/sshd for sshd's privilege separation");
        }
        let dir = tempfile::Builder::new().prefix("test-sshd-").tempdir().expect("temporary directory for sshd");
        let root = dir.path();
        keygen(&root.join("ssh_host_ed25519_key"), "ed25519", "");
        if options.all_host_key_types {
            keygen(&root.join("ssh_host_rsa_key"), "rsa", "");
            keygen(&root.join("ssh_host_ecdsa_key"), "ecdsa", "");
        }
        keygen(&root.join("id_ed25519"), "ed25519", "");
        keygen(&root.join("id_ed25519_encrypted"), "ed25519", KEY_PASSPHRASE);
        keygen(&root.join("id_ed25519_unauthorized"), "ed25519", "");
        let mut authorized = read(&root.join("id_ed25519.pub"));
        authorized.push_str(&read(&root.join("id_ed25519_encrypted.pub")));
        fs::write(root.join("authorized_keys"), authorized).expect("writing authorized_keys");
        fs::create_dir(root.join("data")).expect("creating the data directory");
        let user = current_user();

        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = crate::free_port();
            let config = root.join("sshd_config");
            fs::write(&config, sshd_config(root, port, &options)).expect("writing sshd_config");
            let log = fs::File::create(root.join("sshd.log")).expect("creating sshd.log");
            let mut child = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("sshd.log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", sshd.display()));
            if wait_until_listening(&mut child, port, &root.join("sshd.log")) {
                return Some(Sshd { child, dir, port, user });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = fs::read_to_string(root.join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not start listening on 127.0.0.1 ({START_ATTEMPTS} attempts); its log:\n{last_log}");
    }

    /// The address sshd listens on.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user the tests log in as: whoever runs them.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// An authorized private key without a passphrase (OpenSSH format).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// An authorized private key encrypted with [`KEY_PASSPHRASE`].
    pub fn encrypted_key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519_encrypted")
    }

    /// A valid private key that is not in `authorized_keys`.
    pub fn unauthorized_key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519_unauthorized")
    }

    /// A `known_hosts` holding this server's key as `[127.0.0.1]:PORT`, as
    /// `ssh-keyscan -p PORT 127.0.0.1` prints it.
    pub fn known_hosts(&self) -> PathBuf {
        let path = self.dir.path().join("known_hosts");
        if !path.exists() {
            let line = format!("{} {}", self.host_pattern(), self.host_public_key());
            fs::write(&path, format!("# written by test-servers\n{line}\n")).expect("writing known_hosts");
        }
        path
    }

    /// The same entry with its host name hashed (`|1|salt|hash`), by
    /// `ssh-keygen -H` as `HashKnownHosts yes` would write it.
    pub fn known_hosts_hashed(&self) -> PathBuf {
        let path = self.dir.path().join("known_hosts_hashed");
        fs::copy(self.known_hosts(), &path).expect("copying known_hosts");
        run(Command::new(SSH_KEYGEN).arg("-q").arg("-H").arg("-f").arg(&path));
        let _ = fs::remove_file(self.dir.path().join("known_hosts_hashed.old"));
        path
    }

    /// A `known_hosts` that names this server with another key of the same
    /// type, as after the server was reinstalled (or is an impostor).
    pub fn known_hosts_changed_key(&self) -> PathBuf {
        self.known_hosts_with_other_key("other_ed25519", "ed25519")
    }

    /// A `known_hosts` that knows this server only by a key of another type
    /// (RSA), which this server does not have.
    pub fn known_hosts_other_key_type(&self) -> PathBuf {
        self.known_hosts_with_other_key("other_rsa", "rsa")
    }

    /// A `known_hosts` with entries for other hosts and ports only.
    pub fn known_hosts_without_this_host(&self) -> PathBuf {
        let path = self.dir.path().join("known_hosts_other_hosts");
        let key = self.host_public_key();
        let other_port = if self.port == 65535 { 1024 } else { self.port + 1 };
        fs::write(&path, format!("[127.0.0.1]:{other_port} {key}\nexample.org {key}\n127.0.0.1 {key}\n"))
            .expect("writing known_hosts");
        path
    }

    fn known_hosts_with_other_key(&self, name: &str, key_type: &str) -> PathBuf {
        let key = self.dir.path().join(name);
        if !key.exists() {
            keygen(&key, key_type, "");
        }
        let path = self.dir.path().join(format!("known_hosts_{name}"));
        let public = read(&key.with_extension("pub"));
        fs::write(&path, format!("{} {}\n", self.host_pattern(), public.trim())).expect("writing known_hosts");
        path
    }

    /// `[127.0.0.1]:PORT`: how `known_hosts` names a host on a port other than 22.
    fn host_pattern(&self) -> String {
        format!("[{}]:{}", self.host(), self.port)
    }

    /// The server's Ed25519 public key as `TYPE BASE64` (without a comment).
    pub fn host_public_key(&self) -> String {
        self.host_public_key_of_type("ed25519")
    }

    /// The server's public key of `key_type` (`ed25519`, and with
    /// [`SshdOptions::all_host_key_types`] also `rsa` and `ecdsa`).
    pub fn host_public_key_of_type(&self, key_type: &str) -> String {
        let line = read(&self.dir.path().join(format!("ssh_host_{key_type}_key.pub")));
        line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// A `known_hosts` that knows this server by its `key_type` key only, as
    /// `ssh-keyscan -t TYPE` writes it.
    pub fn known_hosts_of_type(&self, key_type: &str) -> PathBuf {
        let path = self.dir.path().join(format!("known_hosts_{key_type}_only"));
        let line = format!("{} {}\n", self.host_pattern(), self.host_public_key_of_type(key_type));
        fs::write(&path, line).expect("writing known_hosts");
        path
    }

    /// The server key's fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fn host_key_fingerprint(&self) -> String {
        let out = run(Command::new(SSH_KEYGEN)
            .arg("-l")
            .arg("-E")
            .arg("sha256")
            .arg("-f")
            .arg(self.dir.path().join("ssh_host_ed25519_key.pub")));
        out.split_whitespace().nth(1).expect("ssh-keygen -l prints a fingerprint").to_string()
    }

    /// A directory the tests fill and then read over SFTP (by absolute path).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What sshd has logged so far (`-e`: to stderr, which goes to a file).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether sshd listens on `port`, polling until it does, exits, or
/// [`START_TIMEOUT`] passes. Its own log line is required as well as an
/// accepted connection: another process may have taken the port.
fn wait_until_listening(child: &mut Child, port: u16, log: &Path) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    let listening = format!("Server listening on 127.0.0.1 port {port}.");
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let logged = fs::read_to_string(log).is_ok_and(|text| text.contains(&listening));
        if logged && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sshd_config(dir: &Path, port: u16, options: &SshdOptions) -> String {
    let d = dir.display();
    let password = if options.password_authentication { "yes" } else { "no" };
    let extra_host_keys = if options.all_host_key_types {
        format!("HostKey {d}/ssh_host_rsa_key\nHostKey {d}/ssh_host_ecdsa_key\n")
    } else {
        String::new()
    };
    let mut sftp_flags = String::new();
    if options.read_only {
        sftp_flags.push_str(" -R");
    }
    if !options.denied_sftp_requests.is_empty() {
        sftp_flags.push_str(&format!(" -P {}", options.denied_sftp_requests.join(",")));
    }
    format!(
        "# Written by test-servers for one test; see tests/servers/src/sshd.rs.
ListenAddress 127.0.0.1
Port {port}
HostKey {d}/ssh_host_ed25519_key
{extra_host_keys}AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication {password}
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
# Tests connect in parallel; the default (10:30:100) drops some at random.
MaxStartups 100
Subsystem sftp internal-sftp{sftp_flags}
LogLevel VERBOSE
"
    )
}

fn keygen(path: &Path, key_type: &str, passphrase: &str) {
    let mut cmd = Command::new(SSH_KEYGEN);
    cmd.args(["-q", "-t", key_type, "-N", passphrase, "-C", "test-servers", "-f"]).arg(path);
    if key_type == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd);
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !out.status.success() {
        let mut err = std::io::stderr();
        let _ = err.write_all(&out.stderr);
        panic!("{cmd:?} failed: {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The login name of whoever runs the tests (`$USER` may be unset under CI).
fn current_user() -> String {
    let name = run(Command::new("id").arg("-un"));
    name.trim().to_string()
}
