//! Errors a person can act on. Each names the server (`host:port`) and says
//! what to check; none ever contains the password (the login never puts it in
//! a string this crate or async-imap handles, see `transport::Substitution`).

use std::io;

/// What kind of failure, for the host to map to its own outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server refused the user name or password.
    Auth,
    /// The server could not be reached: DNS, refused, timed out, connection lost.
    Unreachable,
    /// TLS could not be set up, usually an untrusted certificate.
    Tls,
    /// The folder does not exist (any more).
    NotFound,
    /// The configuration cannot work as given (e.g. plain IMAP over a network).
    Config,
    /// Anything else the server or the protocol did.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP server {server} refused the login of user {user:?} ({reason}): check the user name and password")]
    Auth { server: String, user: String, reason: String },

    #[error("cannot reach IMAP server {server}: {reason}")]
    Unreachable { server: String, reason: String },

    #[error("TLS with IMAP server {server} failed: {reason}")]
    Tls { server: String, reason: String },

    #[error(
        "IMAP server {server} has no folder {folder:?} (wire name {raw:?}): it was deleted or renamed, \
         or never existed"
    )]
    NotFound { server: String, folder: String, raw: String },

    #[error("IMAP server {server}: {reason}")]
    Config { server: String, reason: String },

    #[error("IMAP server {server}: {reason}")]
    Protocol { server: String, reason: String },
}

impl ImapError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Auth { .. } => ErrorKind::Auth,
            ImapError::Unreachable { .. } => ErrorKind::Unreachable,
            ImapError::Tls { .. } => ErrorKind::Tls,
            ImapError::NotFound { .. } => ErrorKind::NotFound,
            ImapError::Config { .. } => ErrorKind::Config,
            ImapError::Protocol { .. } => ErrorKind::Other,
        }
    }

    pub(crate) fn protocol(server: &str, reason: impl Into<String>) -> ImapError {
        ImapError::Protocol { server: server.to_owned(), reason: reason.into() }
    }

    pub(crate) fn unreachable(server: &str, reason: impl Into<String>) -> ImapError {
        ImapError::Unreachable { server: server.to_owned(), reason: reason.into() }
    }

    /// An I/O failure on an established connection: TLS alerts are TLS
    /// errors, everything else means the server went away.
    pub(crate) fn from_io(server: &str, err: &io::Error) -> ImapError {
        if let Some(reason) = tls_reason(err) {
            return ImapError::Tls { server: server.to_owned(), reason };
        }
        let reason = match err.kind() {
            io::ErrorKind::TimedOut => "the server stopped answering (timed out)".to_owned(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                format!("the connection was lost ({err})")
            }
            _ => format!("connection failed: {err}"),
        };
        ImapError::unreachable(server, reason)
    }

    /// An error from async-imap while running `command` (a verb, e.g. "FETCH").
    pub(crate) fn from_imap(server: &str, command: &str, err: async_imap::error::Error) -> ImapError {
        use async_imap::error::Error;
        match err {
            Error::Io(e) => ImapError::from_io(server, &e),
            Error::ConnectionLost => ImapError::unreachable(server, "the server closed the connection"),
            Error::No(text) => ImapError::protocol(server, format!("{command} was refused: {}", server_text(&text))),
            Error::Bad(text) => ImapError::protocol(
                server,
                format!(
                    "{command} was rejected as invalid (BAD): {}; this is a bug here or in the server",
                    server_text(&text)
                ),
            ),
            other => ImapError::protocol(server, format!("{command} failed: {other}")),
        }
    }
}

/// The human part of async-imap's `code: Some(..), info: Some("...")` strings.
pub(crate) fn server_text(text: &str) -> String {
    match text.split_once("info: Some(\"") {
        Some((_, rest)) => rest.strip_suffix("\")").unwrap_or(rest).replace("\\\"", "\""),
        None => text.to_owned(),
    }
}

/// The sentence for a TLS failure hidden in an I/O error, if it is one.
pub(crate) fn tls_reason(err: &io::Error) -> Option<String> {
    use rustls::{CertificateError, Error};
    let inner = err.get_ref()?.downcast_ref::<Error>()?;
    Some(match inner {
        Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the server's certificate is not trusted (unknown issuer). If the server uses a private or \
             self-signed CA, set ca_file to that CA's certificate (PEM)"
                .to_owned()
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for this host name; connect with the name the \
              certificate was issued for"
            .to_owned(),
        Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_owned()
        }
        Error::InvalidCertificate(other) => format!("the server's certificate was rejected: {other:?}"),
        other => format!("{other}"),
    })
}
