//! Real servers for tests, started on a free loopback port in a private
//! temporary directory and stopped when dropped.
//!
//! Each server needs its Debian package (`scripts/test.sh` installs them).
//! Under `CI=true` a missing one fails the test; elsewhere the test is skipped
//! with a `SKIPPED:` line, so a developer without the package still runs the
//! rest of the suite.

pub mod dovecot;
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
