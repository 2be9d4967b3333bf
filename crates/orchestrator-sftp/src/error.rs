//! One error type for the crate. Every message starts with `user@host:port`
//! (a pipeline may name many servers) and ends with what to do about it.
//! No message ever holds a password or passphrase: none is ever given one.

use crate::config::Target;
use std::path::{Path, PathBuf};

/// What kind of thing went wrong, for callers that react differently (retry
/// when unreachable, skip a vanished file, fail the job on a host key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server refused the credential, or the key file cannot be used.
    Auth,
    /// No TCP connection, no SSH server there, or the connection dropped.
    Unreachable,
    /// The host key is unknown, changed, revoked, or `known_hosts` unreadable.
    HostKey,
    /// The path does not exist.
    NotFound,
    /// The server denied access to the path.
    PermissionDenied,
    /// Anything else the server or libssh2 reported.
    Other,
}

/// A failed connection or SFTP operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SftpError {
    /// DNS, TCP connect or its timeout.
    #[error(
        "{target}: cannot connect: {reason}; check the host name and port, that the SSH server runs, \
         and that no firewall is in the way"
    )]
    Unreachable { target: Target, reason: String },

    /// Something answered, but the SSH handshake did not complete.
    #[error("{target}: the SSH handshake failed: {reason}; is an SSH server listening on port {}?", .target.port)]
    Handshake { target: Target, reason: String },

    /// The connection broke or timed out after it was made.
    #[error("{target}: connection lost during {op} {}: {reason}", .path.display())]
    ConnectionLost { target: Target, op: &'static str, path: PathBuf, reason: String },

    /// `known_hosts` has no line for this server.
    #[error(
        "{target}: unknown host: {} has no key for this server, which offered {} key {}. \
         Check that fingerprint against the server's own (on the server: `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`), \
         then add it with `ssh-keyscan -p {} {} >> {}`",
        .check.known_hosts.display(), .check.key_type, .check.fingerprint,
        .target.port, .target.host, .check.known_hosts.display()
    )]
    UnknownHostKey { target: Target, check: Box<HostKeyCheck> },

    /// `known_hosts` holds other keys for this server.
    #[error(
        "{target}: HOST KEY MISMATCH: the server offered {} key {}, but {} holds another key for it \
         ({}, line(s) {}). Someone may be intercepting the connection (man in the middle), \
         or the server was reinstalled. Do not connect until you have checked the fingerprint on the server \
         (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`); if it is right, remove the old entry with \
         `ssh-keygen -R {} -f {}` and add the new one with `ssh-keyscan -p {} {} >> {}`",
        .check.key_type, .check.fingerprint, .check.known_hosts.display(), .known_types.join(", "), join_lines(.lines),
        keygen_name(.target), .check.known_hosts.display(),
        .target.port, .target.host, .check.known_hosts.display()
    )]
    ChangedHostKey { target: Target, check: Box<HostKeyCheck>, lines: Vec<usize>, known_types: Vec<String> },

    /// `known_hosts` marks the offered key `@revoked`.
    #[error(
        "{target}: the server offered {} key {}, which {} line {line} marks @revoked; refusing \
         to connect. Find out why the key was revoked before changing that line",
        .check.key_type, .check.fingerprint, .check.known_hosts.display()
    )]
    RevokedHostKey { target: Target, check: Box<HostKeyCheck>, line: usize },

    /// The `known_hosts` file exists but cannot be read.
    #[error("{target}: cannot read known_hosts file {}: {reason}", .path.display())]
    KnownHostsUnreadable { target: Target, path: PathBuf, reason: String },

    /// The private key file cannot be opened.
    #[error("{target}: cannot read private key {}: {reason}", .key.display())]
    KeyFileUnreadable { target: Target, key: PathBuf, reason: String },

    /// libssh2 could not decrypt or parse the private key.
    #[error(
        "{target}: cannot use private key {}: wrong or missing passphrase, or not a private key \
         (OpenSSH or PEM format); check the passphrase secret and the key file",
        .key.display()
    )]
    KeyUnusable { target: Target, key: PathBuf },

    /// The server did not accept the key.
    #[error(
        "{target}: the server did not accept private key {}: add its public key to ~/.ssh/authorized_keys \
         of `{}` on the server, or check the user name",
        .key.display(), .target.user
    )]
    KeyRejected { target: Target, key: PathBuf },

    /// The server did not accept the password.
    #[error(
        "{target}: the server did not accept the password: check the password secret and the user name, \
         and that the server allows password logins (PasswordAuthentication) for this user"
    )]
    PasswordRejected { target: Target },

    /// The server denied access to a path.
    #[error(
        "{target}: permission denied: {op} {}; give `{}` access on the server, or choose another path",
        .path.display(), .target.user
    )]
    PermissionDenied { target: Target, op: &'static str, path: PathBuf },

    /// The path does not exist.
    #[error("{target}: no such file or directory: {op} {}; check the path (relative paths start at the login directory)", .path.display())]
    NotFound { target: Target, op: &'static str, path: PathBuf },

    /// Any other failure of an operation.
    #[error("{target}: {op} {} failed: {reason}", .path.display())]
    Remote { target: Target, op: &'static str, path: PathBuf, reason: String },
}

/// What the host key check saw, kept out of line so that every `Result`
/// of this crate stays small.
#[derive(Debug)]
pub struct HostKeyCheck {
    /// The algorithm of the key the server offered (`ssh-ed25519`).
    pub key_type: String,
    /// Its SHA256 fingerprint as OpenSSH prints it.
    pub fingerprint: String,
    /// The `known_hosts` file it was checked against.
    pub known_hosts: PathBuf,
}

impl SftpError {
    /// The kind, for callers that retry, skip or fail depending on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SftpError::Unreachable { .. } | SftpError::Handshake { .. } | SftpError::ConnectionLost { .. } => {
                ErrorKind::Unreachable
            }
            SftpError::UnknownHostKey { .. }
            | SftpError::ChangedHostKey { .. }
            | SftpError::RevokedHostKey { .. }
            | SftpError::KnownHostsUnreadable { .. } => ErrorKind::HostKey,
            SftpError::KeyFileUnreadable { .. }
            | SftpError::KeyUnusable { .. }
            | SftpError::KeyRejected { .. }
            | SftpError::PasswordRejected { .. } => ErrorKind::Auth,
            SftpError::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            SftpError::NotFound { .. } => ErrorKind::NotFound,
            SftpError::Remote { .. } => ErrorKind::Other,
        }
    }

    /// The error for an SFTP operation `op` on `path`, by SFTP status code.
    pub(crate) fn from_op(target: &Target, op: &'static str, path: &Path, e: ssh2::Error) -> SftpError {
        let (target, path) = (target.clone(), path.to_path_buf());
        match e.code() {
            ssh2::ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => SftpError::NotFound { target, op, path },
            ssh2::ErrorCode::SFTP(FX_PERMISSION_DENIED) => SftpError::PermissionDenied { target, op, path },
            ssh2::ErrorCode::Session(code) if CONNECTION_LOST.contains(&code) => {
                SftpError::ConnectionLost { target, op, path, reason: e.message().to_string() }
            }
            _ => SftpError::Remote { target, op, path, reason: describe(&e) },
        }
    }
}

/// SFTP status codes (draft-ietf-secsh-filexfer-02, which OpenSSH speaks).
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;
const FX_NO_SUCH_PATH: i32 = 10;
pub(crate) const FX_OP_UNSUPPORTED: i32 = 8;

/// libssh2 session errors that mean the connection is gone: socket send and
/// receive failures, disconnect, and the per-call timeout.
pub(crate) const CONNECTION_LOST: [i32; 4] = [-7, -9, -13, -43];

/// libssh2's message with its SFTP status name, which says more than "failure".
pub(crate) fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ssh2::ErrorCode::SFTP(code) => format!("{} (SFTP status {code})", e.message()),
        ssh2::ErrorCode::Session(code) => format!("{} (libssh2 error {code})", e.message()),
    }
}

fn join_lines(lines: &[usize]) -> String {
    lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

/// The host as `ssh-keygen -R` wants it, quoted for a shell when bracketed.
fn keygen_name(target: &Target) -> String {
    if target.port == crate::config::DEFAULT_PORT {
        target.host.clone()
    } else {
        format!("'[{}]:{}'", target.host, target.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { user: "backup".into(), host: "nas.lan".into(), port: 2222 }
    }

    #[test]
    fn messages_name_the_target_and_the_fix() {
        let check = |known_hosts: &str| {
            Box::new(HostKeyCheck {
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:abc".into(),
                known_hosts: known_hosts.into(),
            })
        };
        let unknown = SftpError::UnknownHostKey { target: target(), check: check("/config/known_hosts") };
        let text = unknown.to_string();
        assert!(text.starts_with("backup@nas.lan:2222: unknown host"), "{text}");
        assert!(text.contains("SHA256:abc"), "{text}");
        assert!(text.contains("ssh-keyscan -p 2222 nas.lan >> /config/known_hosts"), "{text}");
        assert_eq!(unknown.kind(), ErrorKind::HostKey);

        let changed = SftpError::ChangedHostKey {
            target: target(),
            check: check("/kh"),
            lines: vec![3, 7],
            known_types: vec!["ssh-rsa".into()],
        };
        let text = changed.to_string();
        assert!(text.contains("man in the middle") && text.contains("(ssh-rsa, line(s) 3, 7)"), "{text}");
        assert!(text.contains("ssh-keygen -R '[nas.lan]:2222' -f /kh"), "{text}");
    }

    #[test]
    fn sftp_status_codes_classify() {
        let t = target();
        let e = |code| {
            SftpError::from_op(&t, "opening", Path::new("/x"), ssh2::Error::new(ssh2::ErrorCode::SFTP(code), "m"))
        };
        assert_eq!(e(FX_NO_SUCH_FILE).kind(), ErrorKind::NotFound);
        assert_eq!(e(FX_NO_SUCH_PATH).kind(), ErrorKind::NotFound);
        assert_eq!(e(FX_PERMISSION_DENIED).kind(), ErrorKind::PermissionDenied);
        assert_eq!(e(4).kind(), ErrorKind::Other); // SSH_FX_FAILURE
        let lost = SftpError::from_op(
            &t,
            "reading",
            Path::new("/x"),
            ssh2::Error::new(ssh2::ErrorCode::Session(-9), "timed out"),
        );
        assert_eq!(lost.kind(), ErrorKind::Unreachable);
    }
}
