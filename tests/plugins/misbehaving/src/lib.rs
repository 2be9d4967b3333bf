//! A source plugin that misbehaves on purpose (`behaviour = "…"`), so the
//! end-to-end tests can check that the host contains each kind of harm to the
//! plugin's own job.

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
    /// Where `network` tries to connect.
    pub address: Option<String>,
    /// A secret it is not allowed to read.
    pub token: Option<Secret>,
}

const BEHAVIOURS: &[&str] = &[
    "well-behaved",
    "memory-bomb",
    "endless-loop",
    "trap",
    "read-outside",
    "network",
    "reveal-secret",
    "env",
    "stdout-spam",
    "wants-more",
    "unreadable-file",
];

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
        Ok(wants)
    }

    fn open(config: Config, _context: RunContext) -> Result<Session, PluginError> {
        Ok(Session { config, yielded: false })
    }
}

/// One run.
pub struct Session {
    config: Config,
    yielded: bool,
}

fn entries(unreadable: bool) -> Vec<Entry> {
    let meta = |kind, mode, size| Metadata {
        kind,
        mode,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        size,
        symlink_target: None,
        device: None,
    };
    let mut all = vec![
        Entry { path: Vec::new(), meta: meta(EntryKind::Directory, 0o755, 0), attributes: Vec::new() },
        Entry {
            path: b"hello.txt".to_vec(),
            meta: meta(EntryKind::File, 0o644, CONTENT.len() as u64),
            attributes: Vec::new(),
        },
    ];
    if unreadable {
        // A file whose content cannot be read, between two that can.
        all.insert(
            1,
            Entry { path: b"a-locked.txt".to_vec(), meta: meta(EntryKind::File, 0o600, 5), attributes: Vec::new() },
        );
        all.push(Entry {
            path: b"z-after.txt".to_vec(),
            meta: meta(EntryKind::File, 0o644, CONTENT.len() as u64),
            attributes: Vec::new(),
        });
    }
    all
}

const CONTENT: &[u8] = b"hello from a plugin\n";

impl Session {
    fn misbehave(&self) -> Result<(), PluginError> {
        match self.config.behaviour.as_str() {
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut block = vec![0u8; 16 << 20];
                    for page in block.chunks_mut(4096) {
                        page[0] = 1;
                    }
                    hoard.push(block);
                }
            }
            "endless-loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "trap" => panic!("deliberate panic from the misbehaving plugin"),
            "read-outside" => match plugin_sdk::fs::lstat(b"/etc/passwd") {
                Ok(_) => Err(PluginError::Other("SANDBOX ESCAPE: read /etc/passwd".into())),
                Err(e) => Err(e),
            },
            "network" => {
                let address = self.config.address.clone().unwrap_or_else(|| "127.0.0.1:9".into());
                match std::net::TcpStream::connect(&address) {
                    Ok(mut s) => {
                        let _ = s.write_all(b"escaped");
                        Err(PluginError::Other(format!("SANDBOX ESCAPE: connected to {address}")))
                    }
                    Err(e) => Err(PluginError::PermissionDenied(format!("network: {e}"))),
                }
            }
            "reveal-secret" => match self.config.token.as_ref().map(Secret::reveal) {
                Some(Ok(_)) => Err(PluginError::Other("SANDBOX ESCAPE: got the secret".into())),
                Some(Err(e)) => Err(e),
                None => Err(PluginError::Config("token: needed for reveal-secret".into())),
            },
            "env" => {
                if let Some((name, _)) = std::env::vars().next() {
                    return Err(PluginError::Other(format!("SANDBOX ESCAPE: saw environment variable {name}")));
                }
                if std::fs::read("/proc/self/environ").is_ok() {
                    return Err(PluginError::Other("SANDBOX ESCAPE: read /proc/self/environ".into()));
                }
                Ok(())
            }
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
        if self.yielded {
            return Ok(Vec::new());
        }
        self.misbehave()?;
        self.yielded = true;
        Ok(entries(self.config.behaviour == "unreadable-file"))
    }

    fn open(&mut self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        if path == b"hello.txt" || path == b"z-after.txt" {
            Ok(Box::new(CONTENT))
        } else if path == b"a-locked.txt" {
            Err(PluginError::Io("a-locked.txt: permission denied".into()))
        } else {
            Err(PluginError::NotFound(String::from_utf8_lossy(path).into_owned()))
        }
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_source!(Misbehaving);
