//! OpenSSH `known_hosts` files, read here rather than by libssh2: libssh2
//! rejects a whole file over one line it cannot parse (a `@cert-authority`
//! marker, a security-key type), and cannot tell "unknown host" from "known
//! by another key type", which need different advice.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Digest;
use std::io;
use std::path::Path;

/// The parsed lines of one file that can speak for a host.
#[derive(Debug, Default)]
pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    line: usize,
    revoked: bool,
    hosts: Hosts,
    key: Vec<u8>,
}

#[derive(Debug)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the host's name keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns with `*`, `?` and `!` negation.
    Patterns(String),
}

/// What a file says about the key a server offered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for this host holds exactly this key.
    Known,
    /// No line names this host.
    Unknown,
    /// Lines name this host with other keys: their line numbers and key types.
    Changed { lines: Vec<usize>, known_types: Vec<String> },
    /// An `@revoked` line holds this key.
    Revoked { line: usize },
}

impl KnownHosts {
    /// A missing file is an empty one, so the error for the first connection
    /// is "unknown host" with the command that fixes it.
    pub(crate) fn load(path: &Path) -> io::Result<KnownHosts> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(KnownHosts::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(e),
        }
    }

    /// Lines that do not parse are skipped, as OpenSSH skips them.
    /// `@cert-authority` lines are skipped too: libssh2 cannot check host
    /// certificates, so they can neither admit nor refuse a key here.
    pub(crate) fn parse(text: &str) -> KnownHosts {
        let entries = text.lines().enumerate().filter_map(|(i, line)| parse_line(i + 1, line)).collect();
        KnownHosts { entries }
    }

    /// Compare `key` (the SSH wire blob) with every line naming the host.
    pub(crate) fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        let name = lookup_name(host, port);
        let naming: Vec<&Entry> = self.entries.iter().filter(|e| e.hosts.matches(&name)).collect();
        // A revoked key is refused even where another line lists it as known.
        if let Some(entry) = naming.iter().find(|e| e.revoked && e.key == key) {
            return Verdict::Revoked { line: entry.line };
        }
        let valid: Vec<&&Entry> = naming.iter().filter(|e| !e.revoked).collect();
        if valid.iter().any(|e| e.key == key) {
            return Verdict::Known;
        }
        if valid.is_empty() {
            return Verdict::Unknown;
        }
        let mut known_types: Vec<String> = valid.iter().filter_map(|e| key_type(&e.key)).collect();
        known_types.sort();
        known_types.dedup();
        Verdict::Changed { lines: valid.iter().map(|e| e.line).collect(), known_types }
    }

    /// Key types the file holds for the host, so the handshake can ask the
    /// server for one of those first, as OpenSSH does: a server with both an
    /// RSA and an Ed25519 key, known by its RSA key, is then not a mismatch.
    pub(crate) fn key_types_for(&self, host: &str, port: u16) -> Vec<String> {
        let name = lookup_name(host, port);
        let mut types: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !e.revoked && e.hosts.matches(&name))
            .filter_map(|e| key_type(&e.key))
            .collect();
        types.dedup();
        types
    }
}

/// How OpenSSH names a host in `known_hosts`: bare on port 22, else
/// `[host]:port`; lower case either way.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == crate::config::DEFAULT_PORT { host } else { format!("[{host}]:{port}") }
}

fn parse_line(number: usize, line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if first.starts_with('@') {
        match first {
            "@revoked" => revoked = true,
            _ => return None,
        }
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key = STANDARD.decode(fields.next()?).ok()?;
    let hosts = match first.strip_prefix("|1|") {
        Some(hashed) => {
            let (salt, hash) = hashed.split_once('|')?;
            Hosts::Hashed { salt: STANDARD.decode(salt).ok()?, hash: STANDARD.decode(hash).ok()? }
        }
        None => Hosts::Patterns(first.to_ascii_lowercase()),
    };
    Some(Entry { line: number, revoked, hosts, key })
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else { return false };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(list) => {
                let mut matched = false;
                for pattern in list.split(',') {
                    if let Some(negated) = pattern.strip_prefix('!') {
                        if wildcard(negated.as_bytes(), name.as_bytes()) {
                            return false;
                        }
                    } else if wildcard(pattern.as_bytes(), name.as_bytes()) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// OpenSSH's `match_pattern`: `*` is any run of characters, `?` any one.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| wildcard(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

/// The algorithm name at the start of an SSH public key blob (`ssh-ed25519`).
pub(crate) fn key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `SHA256:…` as `ssh-keygen -l` and ssh's prompts print it, so a user can
/// compare it with what the server's console shows.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob)))
}

#[cfg(test)]
mod tests;
