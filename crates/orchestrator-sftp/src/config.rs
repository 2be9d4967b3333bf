//! What a connection needs, as the host builds it from a pipeline file.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// The SSH port, which `known_hosts` leaves out of a host's name.
pub const DEFAULT_PORT: u16 = 22;

/// Long enough for a slow link or a busy NAS, short enough that a dead host
/// fails a scheduled run instead of hanging it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A password or passphrase. It has no `Display`, its `Debug` is redacted and
/// its memory is wiped on drop, so neither a log line nor an error message
/// can carry it by accident.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wrap a value the host resolved from the pipeline's secret reference.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The value, for handing to libssh2 and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A private key file in OpenSSH or PEM format, as `ssh -i` takes.
    KeyFile {
        /// The private key; libssh2 derives the public half from it.
        path: PathBuf,
        /// For an encrypted key.
        passphrase: Option<Secret>,
    },
    /// A password, for servers (often NAS appliances) that allow no keys.
    Password(Secret),
}

/// One SFTP server and how to log in to it.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    /// Host name or IP address, as `known_hosts` names it.
    pub host: String,
    /// TCP port, [`DEFAULT_PORT`] unless the server says otherwise.
    pub port: u16,
    /// The login name on the server.
    pub user: String,
    /// The credential.
    pub auth: Auth,
    /// An OpenSSH `known_hosts` file that must already hold the server's key:
    /// there is deliberately no way to skip this check.
    pub known_hosts: PathBuf,
    /// For the TCP connect and then for every single blocking libssh2 call
    /// (not for a whole transfer); zero waits forever.
    pub timeout: Duration,
}

impl SftpConfig {
    /// A config for `user@host` on port 22 with the default timeout.
    pub fn new(host: impl Into<String>, user: impl Into<String>, auth: Auth, known_hosts: impl Into<PathBuf>) -> Self {
        SftpConfig {
            host: host.into(),
            port: DEFAULT_PORT,
            user: user.into(),
            auth,
            known_hosts: known_hosts.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Who is logging in where, for messages.
    pub fn target(&self) -> Target {
        Target { user: self.user.clone(), host: self.host.clone(), port: self.port }
    }
}

/// `user@host:port`, the part of every error message that says which of
/// possibly many configured servers failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Login name.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let key = Auth::KeyFile { path: "/k".into(), passphrase: Some(Secret::new("hunter2-passphrase")) };
        let config = SftpConfig::new("nas", "backup", key, "/kh");
        let password = SftpConfig::new("nas", "backup", Auth::Password(Secret::new("hunter2-password")), "/kh");
        for shown in [format!("{config:?}"), format!("{config:#?}"), format!("{password:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
    }

    #[test]
    fn target_names_user_host_and_port() {
        let mut config = SftpConfig::new("nas.lan", "backup", Auth::Password(Secret::new("x")), "/kh");
        assert_eq!(config.target().to_string(), "backup@nas.lan:22");
        config.host = "::1".into();
        config.port = 2222;
        assert_eq!(config.target().to_string(), "backup@[::1]:2222");
    }
}
