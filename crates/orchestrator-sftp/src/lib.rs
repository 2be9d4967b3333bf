//! A native SFTP client for the host: the SFTP capability that directory and
//! TrueNAS sources read through (instead of an sshfs mount, which needs FUSE
//! and `SYS_ADMIN` in a container) and, later, `sftp://` storage.
//!
//! It is blocking, because libssh2 is: the host calls it from
//! `tokio::task::spawn_blocking` or a thread of its own, never on an async
//! executor's thread. One [`Sftp`] is one SSH connection; clones share it,
//! and libssh2 serializes their calls.
//!
//! The server's key must already be in an OpenSSH `known_hosts` file. There
//! is no option to skip that check: a backup client that trusts any key hands
//! its data (and password) to whoever sits in the path.
//!
//! ```no_run
//! use orchestrator_sftp::{Auth, Sftp, SftpConfig};
//! use std::io::Read;
//!
//! let auth = Auth::KeyFile { path: "/config/id_ed25519".into(), passphrase: None };
//! let mut config = SftpConfig::new("nas.lan", "backup", auth, "/config/known_hosts");
//! config.port = 2222;
//! let sftp = Sftp::connect(&config)?;
//! for (name, meta) in sftp.read_dir("/mnt/tank/docs")? {
//!     println!("{} {:?} {} bytes", String::from_utf8_lossy(&name), meta.kind, meta.size);
//! }
//! let mut text = String::new();
//! sftp.open("/mnt/tank/docs/README")?.read_to_string(&mut text)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod connect;
mod error;
mod known_hosts;
mod posix_rename;
mod read;
mod write;

pub use config::{Auth, DEFAULT_PORT, DEFAULT_TIMEOUT, Secret, SftpConfig, Target};
pub use error::{ErrorKind, HostKeyCheck, SftpError};
pub use read::{FileKind, Meta, SftpReader};
pub use write::{AtomicWriter, TEMP_PREFIX};

use posix_rename::PosixRename;
use std::fmt;
use std::sync::{Arc, Mutex};

/// An open SFTP session with one server.
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    // Channels before `session`: they close before the connection.
    sftp: ssh2::Sftp,
    /// Opened on the first rename; `Some(None)` once the server said it has
    /// no `posix-rename@openssh.com`.
    posix_rename: Mutex<Option<Option<PosixRename>>>,
    session: ssh2::Session,
}

impl Sftp {
    /// Connect, check the host key against `config.known_hosts`, log in and
    /// start the SFTP subsystem.
    pub fn connect(config: &SftpConfig) -> Result<Sftp, SftpError> {
        let session = connect::session(config)?;
        let target = config.target();
        let sftp = session.sftp().map_err(|e| SftpError::Remote {
            target: target.clone(),
            op: "starting the SFTP subsystem (is `Subsystem sftp` enabled in sshd_config?)",
            path: Default::default(),
            reason: error::describe(&e),
        })?;
        Ok(Sftp { inner: Arc::new(Inner { target, sftp, posix_rename: Mutex::new(None), session }) })
    }

    /// Who is logged in where.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    fn raw(&self) -> &ssh2::Sftp {
        &self.inner.sftp
    }
}

impl fmt::Debug for Sftp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sftp").field("target", &self.inner.target.to_string()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    /// The host moves sessions, readers and writers into blocking tasks and
    /// hands readers on as `Box<dyn Read + Send + Sync>`.
    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<super::Sftp>();
        send_sync::<super::SftpReader>();
        send_sync::<super::AtomicWriter>();
        send_sync::<super::SftpError>();
    }
}
