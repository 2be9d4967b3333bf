//! Where and how to log in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// TLS from the first byte ("imaps"), the default: nothing is ever sent in
    /// the clear, not even the greeting.
    #[default]
    Tls,
    /// Plain TCP, then STARTTLS before anything else; refused if the server
    /// does not offer it (never a silent fallback to plain).
    StartTls,
    /// No TLS at all. Only to a loopback address: a password in the clear over
    /// a network is never acceptable.
    Plain,
}

impl Security {
    /// The port a server listens on for this security by convention.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 993,
            Security::StartTls | Security::Plain => 143,
        }
    }
}

/// A password that cannot be printed: `Debug` shows a placeholder and there is
/// no `Display`, so it cannot end up in a log line or an error by accident.
/// The memory is wiped when it is dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(value: impl Into<String>) -> Password {
        Password(Zeroizing::new(value.into()))
    }

    /// Only the login itself reads the value.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(value: String) -> Password {
        Password::new(value)
    }
}

/// One IMAP account on one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// A PEM file of CA certificates to trust instead of the system's, for a
    /// server with a private or self-signed certificate.
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: Password,
    /// Limit for reaching the server, TLS and the greeting together.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for the server's answer before the
    /// connection is given up: a hung server must not hang a backup forever.
    pub idle_timeout: Duration,
}

impl ServerConfig {
    /// A configuration with the conventional port for `security` and default timeouts.
    pub fn new(host: impl Into<String>, security: Security, user: impl Into<String>, password: Password) -> Self {
        ServerConfig {
            host: host.into(),
            port: security.default_port(),
            security,
            ca_file: None,
            user: user.into(),
            password,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }

    /// `host:port`, the way every error names the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_prints() {
        let config = ServerConfig::new("localhost", Security::Tls, "alice", Password::new("hunter2-secret"));
        let printed = format!("{config:?} {config:#?} {:?}", config.password);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(config.port, 993);
        assert_eq!(config.server(), "localhost:993");
    }
}
