//! Real servers for tests, started on a free loopback port in a private
//! temporary directory and stopped when dropped.
//!
//! Each server needs its Debian package (`scripts/test.sh` installs them).
//! Under `CI=true` a missing one fails the test; elsewhere the test is skipped
//! with a `SKIPPED:` line, so a developer without the package still runs the
//! rest of the suite.
//!
//! real servers on free loopback ports for tests, skipped outside CI when not
//! installed. `dovecot.rs`: a private Dovecot per test (own config, CA made
//! with rcgen, passwd-file users, maildir on tmpfs, zone UTC+05:30), doveadm
//! helpers to create, delete and deliver behind a client's back, and each
//! session's fetch counters read from the `imap_logout_format` log line (how
//! many bodies a run fetched). `truenas.rs`: a fake TrueNAS in-process (hyper +
//! tokio-tungstenite on a thread of its own) per generation (24.10 REST only,
//! 25.04 JSON-RPC with `zfs.snapshot.*`, 25.10 with `pool.snapshot.*`), plain
//! or HTTPS with a throw-away CA, API key checked, middleware's error shapes
//! and query filters (REST `field__op`); datasets mounted under `root_dir`,
//! elsewhere, or not at all; a snapshot is a copy of the mountpoint into
//! `.zfs/snapshot/<name>/` in which other datasets' mountpoints are empty
//! directories, as ZFS shows them (a recursive one copies each descendant into
//! its own `.zfs/snapshot/<name>/`), and every call is recorded for assertions;
//! `after_snapshot` runs a test's hook right after a snapshot is taken (to
//! change the live dataset or break the run mid-way) and `refuse_deletes` makes
//! deletes fail as a busy dataset's.
//! `http_recorder.rs`: an HTTP/1.1 receiver in-process (hyper on a thread of
//! its own) that records every request (method, path with query, lowercased
//! headers, body, arrival time) for the webhook, ping and ntfy tests, with
//! answers and stalls scripted by path prefix.
//! `smtp.rs`: aiosmtpd from a venv (`ORCHESTRATOR_SMTP_SERVER`) running
//! `smtp_server.py`: AUTH PLAIN/LOGIN, no TLS, STARTTLS required or implicit
//! TLS with a throw-away CA, each message kept as received with its envelope.
//! `promtool.rs`: `promtool check metrics` (Debian's prometheus) on a
//! `/metrics` text, its complaints returned.

pub mod dovecot;
pub mod http_recorder;
pub mod promtool;
pub mod proxy;
pub mod s3;
pub mod smtp;
pub mod sshd;
pub mod truenas;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Whether this is a CI run, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The first of `candidates` that exists, or `None` after a `SKIPPED` line
/// (outside CI). Under `CI=true` a missing program panics, naming `package`.
pub fn require_program(candidates: &[&str], package: &str) -> Option<PathBuf> {
    let found = candidates.iter().map(Path::new).find(|p| p.is_file()).map(Path::to_path_buf);
    if found.is_none() {
        let message = format!("{} is not installed (apt-get install {package})", candidates[0]);
        assert!(!in_ci(), "{message}; CI=true needs it");
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free loopback port")
}
