//! A source plugin that misbehaves on purpose (`behaviour = "…"`), so the
//! end-to-end tests can check that the host contains each kind of harm to the
//! plugin's own job.
//!
//! Behaviours (all triggered by the first `Session::next` unless noted):
//!
//! * `well-behaved`: yields the root and `hello.txt`, a good run;
//! * `memory-bomb`: allocates and touches 16 MiB blocks forever;
//! * `endless-loop`: spins forever;
//! * `trap`: panics;
//! * `read-outside`: `lstat`s `/etc/passwd`, outside its grant;
//! * `network`: opens a TCP connection to `address`;
//! * `reveal-secret`: reveals `token`, which the pipeline does not allow;
//! * `echo-secret`: reveals `token` (granted) and fails with an error that
//!   quotes it, as a plugin echoing a server's answer might;
//! * `sftp-foreign-key`: connects to `address` over SFTP (granted) with a
//!   key file that is not a value of its configuration (the host's own);
//! * `env`: looks for the host's environment variables;
//! * `stdout-spam`: writes 10 lines to stderr, then behaves;
//! * `wants-more`: `validate` wants `/etc` as well, which its configuration
//!   does not name, so the host refuses to run it;
//! * `unreadable-file`: yields a file whose content cannot be read between
//!   two that can;
//! * `attributes`: not harm but a source with entry attributes, as the IMAP
//!   source has them: `cur/` and two messages (`MESSAGE_SMALL`, 20 bytes,
//!   and `MESSAGE_BIG`, `BIG_LEN` bytes) whose attributes are `maildir.info`
//!   and `imap.flags` from the keys of the same names when given; with
//!   `refuse_content = true` opening a message fails with
//!   `CONTENT_REFUSED`, so a test sees whether a sink asked for it;
//! * `slow`: not harm but a long run: after the root, one file per `next`,
//!   `SLOW_STEP` apart, for `SLOW_FILES` files; for stopping a run midway.
//!
//! Every behaviour logs `finish: <outcome>` (info) when the host finishes
//! the session, so a test sees how the host ended it.
//!
//! A behaviour that is contained returns the error it got; one that escapes
//! the sandbox returns an error starting with `SANDBOX ESCAPE`, never the
//! secret or value it reached.

use plugin_sdk::prelude::*;
use serde::Deserialize;
use std::io::Write;

/// The plugin's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to do wrong.
    pub behaviour: String,
    /// A path it is granted (so it has a read grant to stay inside of).
    pub path: Option<String>,
    /// Where `network` tries to connect (`host:port`), and the SFTP server
    /// of `sftp-foreign-key`.
    pub address: Option<String>,
    /// `sftp-foreign-key`: the known_hosts file it names (a config value).
    pub known_hosts: Option<String>,
    /// A secret it is not allowed to reveal.
    pub token: Option<Secret>,
    /// `attributes`: the messages' `maildir.info` attribute.
    pub maildir_info: Option<String>,
    /// `attributes`: the messages' `imap.flags` attribute.
    pub imap_flags: Option<String>,
    /// `attributes`: fail whenever a message's content is asked for.
    #[serde(default)]
    pub refuse_content: bool,
}

/// Every behaviour this plugin knows.
pub const BEHAVIOURS: &[&str] = &[
    "well-behaved",
    "memory-bomb",
    "endless-loop",
    "trap",
    "read-outside",
    "network",
    "reveal-secret",
    "echo-secret",
    "sftp-foreign-key",
    "env",
    "stdout-spam",
    "wants-more",
    "unreadable-file",
    "attributes",
    "slow",
];

/// `slow`: the time between two files.
pub const SLOW_STEP: std::time::Duration = std::time::Duration::from_millis(50);
/// `slow`: how many files (over 8 minutes' worth).
pub const SLOW_FILES: u32 = 10_000;

/// `attributes`: the small message.
pub const MESSAGE_SMALL: &[u8] = b"cur/1700000000.M1P1.host";
/// `attributes`: the message whose content spans several 64 KiB chunks.
pub const MESSAGE_BIG: &[u8] = b"cur/1700000001.M2P1.host";
/// `attributes`: the size of `MESSAGE_BIG`.
pub const BIG_LEN: usize = 150_000;
/// `attributes`: the error when content is asked for with `refuse_content`.
pub const CONTENT_REFUSED: &str = "content asked for although only attributes changed";

/// The content of `MESSAGE_BIG`: not compressible to nothing, and the same
/// in every run.
pub fn big_content() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..BIG_LEN)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// The content of every readable file.
pub const CONTENT: &[u8] = b"hello from a plugin\n";

/// Where `network` connects when no `address` is given (the discard port).
const DEFAULT_ADDRESS: &str = "127.0.0.1:9";

/// The plugin.
pub struct Misbehaving;

impl Source for Misbehaving {
    type Config = Config;
    type Session = Session;

    fn info() -> PluginInfo {
        plugin_info!("misbehaving", "Misbehaves on purpose to test the sandbox")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        if !BEHAVIOURS.contains(&config.behaviour.as_str()) {
            return Err(PluginError::Config(format!("behaviour: unknown behaviour {:?}", config.behaviour)));
        }
        let mut wants: Vec<Want> = config.path.iter().map(|p| Want::ReadPath(p.clone())).collect();
        if config.behaviour == "wants-more" {
            wants.push(Want::ReadPath("/etc".into()));
        }
        if config.behaviour == "sftp-foreign-key"
            && let Some(address) = &config.address
        {
            wants.push(Want::Connect(address.clone()));
        }
        if config.behaviour == "echo-secret" {
            wants.push(Want::RevealSecret("token".into()));
        }
        Ok(wants)
    }

    fn open(config: Config, _context: RunContext) -> Result<Session, PluginError> {
        Ok(Session { config, yielded: false, slow_yielded: 0 })
    }
}

/// One run.
pub struct Session {
    config: Config,
    yielded: bool,
    slow_yielded: u32,
}

fn meta(kind: EntryKind, mode: u32, size: u64) -> Metadata {
    Metadata {
        kind,
        mode,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        size,
        symlink_target: None,
        device: None,
    }
}

fn entry(path: &[u8], meta: Metadata) -> Entry {
    Entry { path: path.to_vec(), meta, attributes: Vec::new() }
}

/// What a run yields: the root and `hello.txt`; with `unreadable`, also a
/// file that cannot be read before it and a readable one after it.
pub fn entries(unreadable: bool) -> Vec<Entry> {
    let mut all = vec![
        entry(b"", meta(EntryKind::Directory, 0o755, 0)),
        entry(b"hello.txt", meta(EntryKind::File, 0o644, CONTENT.len() as u64)),
    ];
    if unreadable {
        all.insert(1, entry(b"a-locked.txt", meta(EntryKind::File, 0o600, 5)));
        all.push(entry(b"z-after.txt", meta(EntryKind::File, 0o644, CONTENT.len() as u64)));
    }
    all
}

/// What `attributes` yields.
pub fn attribute_entries(config: &Config) -> Vec<Entry> {
    let mut attributes = Vec::new();
    if let Some(flags) = &config.imap_flags {
        attributes.push(("imap.flags".to_string(), flags.clone()));
    }
    if let Some(info) = &config.maildir_info {
        attributes.push(("maildir.info".to_string(), info.clone()));
    }
    let message = |path: &[u8], size: usize| Entry {
        path: path.to_vec(),
        meta: meta(EntryKind::File, 0o600, size as u64),
        attributes: attributes.clone(),
    };
    vec![
        entry(b"", meta(EntryKind::Directory, 0o700, 0)),
        entry(b"cur", meta(EntryKind::Directory, 0o700, 0)),
        message(MESSAGE_SMALL, CONTENT.len()),
        message(MESSAGE_BIG, BIG_LEN),
    ]
}

/// Allocate and touch 16 MiB blocks until the host stops the plugin.
fn memory_bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 16 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        hoard.push(std::hint::black_box(block));
        std::hint::black_box(&mut hoard);
    }
}

fn endless_loop() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Try to connect to `address`; a refused connection is the good outcome.
pub fn network(address: &str) -> PluginError {
    match std::net::TcpStream::connect(address) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"escaped");
            PluginError::Other(format!("SANDBOX ESCAPE: connected to {address}"))
        }
        Err(e) => PluginError::PermissionDenied(format!("network: {e}")),
    }
}

/// The name of the first variable in `/proc/self/environ`-style data.
fn first_variable(environ: &[u8]) -> Option<String> {
    let first = environ.split(|&b| b == 0).find(|v| !v.is_empty())?;
    let name = first.split(|&b| b == b'=').next().unwrap_or(first);
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Look for any environment variable; `Err` names the first one seen.
pub fn environment() -> Result<(), PluginError> {
    let escape = |name: &str| PluginError::Other(format!("SANDBOX ESCAPE: saw environment variable {name}"));
    if let Some((name, _)) = std::env::vars_os().next() {
        return Err(escape(&name.to_string_lossy()));
    }
    if let Ok(environ) = std::fs::read("/proc/self/environ")
        && let Some(name) = first_variable(&environ)
    {
        return Err(escape(&name));
    }
    Ok(())
}

impl Session {
    /// Do the configured harm; `Ok` when the run should go on normally.
    fn misbehave(&self) -> Result<(), PluginError> {
        match self.config.behaviour.as_str() {
            "memory-bomb" => memory_bomb(),
            "endless-loop" => endless_loop(),
            "trap" => panic!("deliberate panic from the misbehaving plugin"),
            "read-outside" => match plugin_sdk::fs::lstat(b"/etc/passwd") {
                Ok(_) => Err(PluginError::Other("SANDBOX ESCAPE: read /etc/passwd".into())),
                Err(e) => Err(e),
            },
            "network" => Err(network(self.config.address.as_deref().unwrap_or(DEFAULT_ADDRESS))),
            "reveal-secret" => match self.config.token.as_ref().map(Secret::reveal) {
                // Never the value itself: the tests check it reaches no output.
                Some(Ok(_)) => Err(PluginError::Other("SANDBOX ESCAPE: got the secret".into())),
                Some(Err(e)) => Err(e),
                None => Err(PluginError::Config("token: needed for behaviour \"reveal-secret\"".into())),
            },
            "echo-secret" => match self.config.token.as_ref().map(Secret::reveal) {
                Some(Ok(value)) => Err(PluginError::PermissionDenied(format!("the server refused token {value}"))),
                Some(Err(e)) => Err(e),
                None => Err(PluginError::Config("token: needed for behaviour \"echo-secret\"".into())),
            },
            "sftp-foreign-key" => {
                let address = self.config.address.as_deref().unwrap_or(DEFAULT_ADDRESS);
                let (host, port) = address.rsplit_once(':').unwrap_or((address, "22"));
                let options = plugin_sdk::sftp::ConnectOptions {
                    host: host.to_string(),
                    port: port.parse().unwrap_or(22),
                    user: "root".into(),
                    key_file: "/etc/ssh/ssh_host_ed25519_key".into(),
                    key_passphrase_secret: None,
                    known_hosts: self.config.known_hosts.clone().unwrap_or_default(),
                };
                match plugin_sdk::sftp::Session::connect(&options) {
                    Ok(_) => Err(PluginError::Other("SANDBOX ESCAPE: logged in with the host's key".into())),
                    Err(e) => Err(e),
                }
            }
            "env" => environment(),
            "stdout-spam" => {
                for n in 1..=10 {
                    eprintln!("misbehaving plugin line {n}");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl plugin_sdk::Session for Session {
    fn next(&mut self, _max: usize) -> Result<Vec<Entry>, PluginError> {
        if self.config.behaviour == "slow" {
            return Ok(self.next_slow());
        }
        if self.yielded {
            return Ok(Vec::new());
        }
        self.misbehave()?;
        self.yielded = true;
        if self.config.behaviour == "attributes" {
            return Ok(attribute_entries(&self.config));
        }
        Ok(entries(self.config.behaviour == "unreadable-file"))
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        if self.config.behaviour == "attributes" {
            if self.config.refuse_content {
                return Err(PluginError::Io(format!("{}: {CONTENT_REFUSED}", String::from_utf8_lossy(path))));
            }
            return match path {
                MESSAGE_SMALL => Ok(Box::new(CONTENT)),
                MESSAGE_BIG => Ok(Box::new(std::io::Cursor::new(big_content()))),
                _ => Err(PluginError::NotFound(format!("{} was not yielded", String::from_utf8_lossy(path)))),
            };
        }
        match path {
            b"hello.txt" | b"z-after.txt" => Ok(Box::new(CONTENT)),
            p if self.config.behaviour == "slow" && p.starts_with(b"slow-") => Ok(Box::new(CONTENT)),
            b"a-locked.txt" => Err(PluginError::Io("a-locked.txt: permission denied".into())),
            _ => Err(PluginError::NotFound(format!("{} was not yielded", String::from_utf8_lossy(path)))),
        }
    }

    fn finish(&mut self, outcome: Outcome) -> Result<(), PluginError> {
        let outcome = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Cancelled => "cancelled",
        };
        // Natively (this crate's unit tests) there is no host to log to.
        if cfg!(target_arch = "wasm32") {
            plugin_sdk::log::write(plugin_sdk::log::Level::Info, &format!("finish: {outcome}"));
        }
        Ok(())
    }
}

impl Session {
    fn next_slow(&mut self) -> Vec<Entry> {
        if !self.yielded {
            self.yielded = true;
            return vec![entry(b"", meta(EntryKind::Directory, 0o755, 0))];
        }
        if self.slow_yielded == SLOW_FILES {
            return Vec::new();
        }
        std::thread::sleep(SLOW_STEP);
        self.slow_yielded += 1;
        let name = format!("slow-{:05}.txt", self.slow_yielded);
        vec![entry(name.as_bytes(), meta(EntryKind::File, 0o644, CONTENT.len() as u64))]
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(Misbehaving);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::Session as _;
    use std::io::Read;

    fn config(json: &str) -> Config {
        plugin_sdk::parse_config(json).unwrap()
    }

    fn session(behaviour: &str) -> Session {
        let context = RunContext { source_name: "s".into(), run_id: "r".into(), time: 1 };
        Misbehaving::open(config(&format!(r#"{{"behaviour": "{behaviour}"}}"#)), context).unwrap()
    }

    #[test]
    fn wants_follow_the_config() {
        let c = config(r#"{"behaviour": "read-outside", "path": "/data"}"#);
        assert_eq!(Misbehaving::validate(&c).unwrap(), vec![Want::ReadPath("/data".into())]);
        let c = config(r#"{"behaviour": "wants-more", "path": "/data"}"#);
        assert_eq!(
            Misbehaving::validate(&c).unwrap(),
            vec![Want::ReadPath("/data".into()), Want::ReadPath("/etc".into())]
        );
        assert_eq!(Misbehaving::validate(&config(r#"{"behaviour": "trap"}"#)).unwrap(), vec![]);
        for b in BEHAVIOURS {
            assert!(Misbehaving::validate(&config(&format!(r#"{{"behaviour": "{b}"}}"#))).is_ok());
        }
    }

    #[test]
    fn unknown_behaviours_and_keys_are_config_errors() {
        match Misbehaving::validate(&config(r#"{"behaviour": "x"}"#)) {
            Err(PluginError::Config(m)) => assert_eq!(m, "behaviour: unknown behaviour \"x\""),
            other => panic!("{other:?}"),
        }
        assert!(plugin_sdk::parse_config::<Config>(r#"{"behaviour": "trap", "extra": 1}"#).is_err());
        let c = config(r#"{"behaviour": "reveal-secret", "token": {"secret": "token"}}"#);
        assert_eq!(c.token.unwrap().name(), "token");
    }

    #[test]
    fn a_good_run_yields_the_root_and_one_file() {
        for behaviour in ["well-behaved", "stdout-spam", "wants-more"] {
            let mut s = session(behaviour);
            let got = s.next(100).unwrap();
            assert_eq!(got.len(), 2);
            assert!(got[0].path.is_empty() && got[0].meta.kind == EntryKind::Directory);
            assert_eq!(got[1].path, b"hello.txt");
            assert_eq!((got[1].meta.mode, got[1].meta.mtime, got[1].meta.size), (0o644, 1_700_000_000, 20));
            assert!(s.next(100).unwrap().is_empty());
            let mut content = Vec::new();
            s.open(b"hello.txt").unwrap().read_to_end(&mut content).unwrap();
            assert_eq!(content, CONTENT);
            assert!(matches!(s.open(b"nope"), Err(PluginError::NotFound(_))));
            s.finish(Outcome::Success).unwrap();
        }
    }

    #[test]
    fn unreadable_file_sits_between_readable_ones() {
        let mut s = session("unreadable-file");
        let paths: Vec<Vec<u8>> = s.next(100).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, [&b""[..], b"a-locked.txt", b"hello.txt", b"z-after.txt"]);
        assert!(matches!(s.open(b"a-locked.txt"), Err(PluginError::Io(_))));
        assert!(s.open(b"z-after.txt").is_ok());
    }

    #[test]
    fn attributes_come_from_the_config() {
        let c = config(r#"{"behaviour": "attributes", "maildir_info": "2,S", "imap_flags": "\\Seen"}"#);
        let got = attribute_entries(&c);
        let paths: Vec<&[u8]> = got.iter().map(|e| e.path.as_slice()).collect();
        assert_eq!(paths, [&b""[..], b"cur", MESSAGE_SMALL, MESSAGE_BIG]);
        let want = vec![("imap.flags".to_string(), "\\Seen".to_string()), ("maildir.info".into(), "2,S".into())];
        assert_eq!(got[2].attributes, want);
        assert_eq!(got[3].meta.size, BIG_LEN as u64);
        assert!(got[1].attributes.is_empty());
        assert!(attribute_entries(&config(r#"{"behaviour": "attributes"}"#))[2].attributes.is_empty());
        let context = RunContext { source_name: "s".into(), run_id: "r".into(), time: 1 };
        let mut s = Misbehaving::open(c, context.clone()).unwrap();
        let mut content = Vec::new();
        s.open(MESSAGE_BIG).unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, big_content());
        let refusing = config(r#"{"behaviour": "attributes", "refuse_content": true}"#);
        let mut s = Misbehaving::open(refusing, context).unwrap();
        assert!(matches!(s.open(MESSAGE_SMALL), Err(PluginError::Io(m)) if m.contains(CONTENT_REFUSED)));
    }

    #[test]
    #[should_panic(expected = "deliberate panic from the misbehaving plugin")]
    fn trap_panics() {
        let _ = session("trap").next(1);
    }

    #[test]
    fn network_reports_what_happened() {
        // Nothing listens: the error is a refusal.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        assert!(matches!(network(&address), PluginError::PermissionDenied(m) if m.starts_with("network: ")));
        // Something listens (as it would if the sandbox leaked): an escape.
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = open.local_addr().unwrap().to_string();
        match network(&address) {
            PluginError::Other(m) => assert_eq!(m, format!("SANDBOX ESCAPE: connected to {address}")),
            other => panic!("{other:?}"),
        }
        let mut got = String::new();
        open.accept().unwrap().0.read_to_string(&mut got).unwrap();
        assert_eq!(got, "escaped");
    }

    #[test]
    fn environment_is_named_not_shown() {
        assert_eq!(first_variable(b"HOME=/root\0PATH=/bin\0"), Some("HOME".into()));
        assert_eq!(first_variable(b"\0"), None);
        // Natively the process has variables: the escape is reported by name.
        match environment() {
            Err(PluginError::Other(m)) => {
                assert!(m.starts_with("SANDBOX ESCAPE: saw environment variable "));
                assert!(!m.contains('='), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
