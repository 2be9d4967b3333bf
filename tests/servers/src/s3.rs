//! An S3-compatible server on loopback: moto's standalone server (PyPI,
//! installed by `scripts/test.sh` into a venv of its own, found through
//! `ORCHESTRATOR_S3_SERVER`).
//!
//! It runs with IAM checks on: the first requests (a user, its access key
//! and policy, the buckets; `s3_admin.py setup`) go in unsigned, and every
//! later one must be signed with that key, so a wrong secret is refused as
//! AWS refuses it. What a test needs to see behind the client's back (the
//! objects, the multipart uploads in progress) it asks through
//! `s3_admin.py`, with boto3.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Buckets every server starts with.
pub const BUCKETS: &[&str] = &["backups", "interop"];

/// Unsigned requests `s3_admin.py setup` makes: user, access key, policy,
/// and one per bucket.
const SETUP_REQUESTS: usize = 3 + BUCKETS.len();

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running S3 server, killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    program: PathBuf,
    dir: TempDir,
    port: u16,
    key_id: String,
    secret: String,
}

impl S3Server {
    /// Start a server with [`BUCKETS`]; `None` (after a `SKIPPED` line) when
    /// it is not installed and this is not CI.
    pub fn start() -> Option<S3Server> {
        let program = std::env::var_os("ORCHESTRATOR_S3_SERVER").map(PathBuf::from);
        let program = match program.filter(|p| p.is_file()) {
            Some(p) => p,
            None => {
                let message = "the S3 server is not installed (scripts/test.sh installs moto into a venv and sets \
                               ORCHESTRATOR_S3_SERVER)";
                assert!(!crate::in_ci(), "{message}; CI=true needs it");
                eprintln!("SKIPPED: {message}");
                return None;
            }
        };
        let dir = tempfile::Builder::new().prefix("test-s3-").tempdir().expect("temporary directory for the S3 server");
        let port = crate::free_port();
        let mut server = S3Server { child: None, program, dir, port, key_id: String::new(), secret: String::new() };
        server.spawn();
        let out = server.admin(&["setup"], BUCKETS);
        let mut lines = out.lines();
        server.key_id = lines.next().expect("setup prints a key id").to_string();
        server.secret = lines.next().expect("setup prints a secret").to_string();
        Some(server)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("creating server.log");
        let child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
            // Where boto3 inside the server would look for credentials.
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the S3 server exited ({status}); its log:\n{}", self.log());
            }
            assert!(started.elapsed() < START_TIMEOUT, "the S3 server did not listen; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The access key id of the user the tests back up as.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Its secret access key.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Every object in `bucket`, as (key, size).
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        self.admin(&["objects"], &[bucket])
            .lines()
            .map(|l| {
                let (key, size) = l.split_once('\t').expect("key TAB size");
                (key.to_string(), size.parse().expect("a size"))
            })
            .collect()
    }

    /// The multipart uploads in progress in `bucket`, as (key, upload id).
    pub fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        self.admin(&["uploads"], &[bucket])
            .lines()
            .map(|l| {
                let (key, id) = l.split_once('\t').expect("key TAB id");
                (key.to_string(), id.to_string())
            })
            .collect()
    }

    /// Write `data` to `key`, as another program would.
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.admin_with_input(&["put"], &[bucket, key], data);
    }

    /// Start a multipart upload of `key` with one part, as a killed run
    /// leaves one; returns its id.
    pub fn start_upload(&self, bucket: &str, key: &str) -> String {
        self.admin(&["start-upload"], &[bucket, key]).trim().to_string()
    }

    /// Kill the server mid-whatever (moto keeps its objects in memory: they
    /// go with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn admin(&self, command: &[&str], args: &[&str]) -> String {
        self.admin_with_input(command, args, b"")
    }

    fn admin_with_input(&self, command: &[&str], args: &[&str], input: &[u8]) -> String {
        use std::io::Write;
        let python = self.program.with_file_name("python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3_admin.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(self.endpoint())
            .args(command)
            .args(args)
            .env("S3_KEY_ID", &self.key_id)
            .env("S3_SECRET", &self.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
        child.stdin.take().expect("piped").write_all(input).expect("writing to s3_admin.py");
        let out = child.wait_with_output().expect("s3_admin.py ends");
        assert!(
            out.status.success(),
            "s3_admin.py {command:?} {args:?}: {}\nthe server's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).expect("s3_admin.py prints UTF-8")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
