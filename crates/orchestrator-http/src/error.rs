//! Errors a person can act on: each names the URL (never a secret) and says
//! what to check.

use std::io;
use std::time::Duration;

use serde_json::Value;

/// What kind of failure, for callers to map to their own outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration cannot work as given: a bad URL, plain HTTP over a
    /// network, a path outside the base URL, an unreadable `ca_file`.
    Config,
    /// The server could not be reached: DNS, refused, connection lost.
    Unreachable,
    /// The server did not answer in time.
    Timeout,
    /// TLS failed: untrusted certificate, pin mismatch, wrong name.
    Tls,
    /// HTTP 401 or 403: the credentials were refused.
    Auth,
    /// HTTP 404 (or a WebSocket route that does not exist).
    NotFound,
    /// A JSON-RPC error object from the server.
    Rpc,
    /// Anything else the server did that does not fit the protocol.
    Protocol,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {reason}")]
    Config { url: String, reason: String },

    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },

    #[error(
        "{url} did not answer within {} s while {during}: check that the server is up and that \
         nothing (a firewall, a proxy) holds the connection",
        after.as_secs_f32()
    )]
    Timeout { url: String, during: &'static str, after: Duration },

    #[error(
        "the TLS certificate of {url} is not trusted ({reason}; the certificate presented has SHA-256 \
         fingerprint {fingerprint}). If the server uses a private CA or a self-signed certificate, set \
         ca_file to that CA's certificate (PEM), or set tls_fingerprint to the certificate's SHA-256 \
         fingerprint after checking it on the server itself, or with \
         `openssl s_client -connect {host_port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`"
    )]
    Untrusted { url: String, host_port: String, reason: String, fingerprint: String },

    #[error(
        "the TLS certificate of {url} does not match tls_fingerprint: expected SHA-256 {expected}, the \
         server presented {presented}. If the server's certificate was renewed on purpose, check the new \
         one with `openssl s_client -connect {host_port} </dev/null 2>/dev/null | openssl x509 -noout \
         -fingerprint -sha256` and update tls_fingerprint; otherwise something is in between"
    )]
    PinMismatch { url: String, host_port: String, expected: String, presented: String },

    #[error("TLS with {url} failed: {reason}")]
    Tls { url: String, reason: String },

    #[error(
        "{url} refused the credentials (HTTP {status}{}): check the API key (is it the right one, \
         not revoked or expired, for a user allowed to do this?)",
        message_suffix(message)
    )]
    Auth { url: String, status: u16, message: String },

    #[error("{url} does not exist on the server (HTTP 404{})", message_suffix(message))]
    NotFound { url: String, message: String },

    #[error("{url} refused the WebSocket connection (HTTP {status}{})", message_suffix(message))]
    Rejected { url: String, status: u16, message: String },

    #[error("{url}: {method} failed: {message} (JSON-RPC error {code}{})", rpc_suffix(data))]
    Rpc { url: String, method: String, code: i64, message: String, data: Value },

    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

fn rpc_suffix(data: &Value) -> String {
    match data.get("reason").and_then(Value::as_str) {
        Some(reason) => format!("; the server says: {reason}"),
        None => String::new(),
    }
}

impl HttpError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Config { .. } => ErrorKind::Config,
            HttpError::Unreachable { .. } => ErrorKind::Unreachable,
            HttpError::Timeout { .. } => ErrorKind::Timeout,
            HttpError::Untrusted { .. } | HttpError::PinMismatch { .. } | HttpError::Tls { .. } => ErrorKind::Tls,
            HttpError::Auth { .. } => ErrorKind::Auth,
            HttpError::NotFound { .. } => ErrorKind::NotFound,
            HttpError::Rejected { .. } | HttpError::Protocol { .. } => ErrorKind::Protocol,
            HttpError::Rpc { .. } => ErrorKind::Rpc,
        }
    }

    /// The URL the error is about.
    pub fn url(&self) -> &str {
        match self {
            HttpError::Config { url, .. }
            | HttpError::Unreachable { url, .. }
            | HttpError::Timeout { url, .. }
            | HttpError::Untrusted { url, .. }
            | HttpError::PinMismatch { url, .. }
            | HttpError::Tls { url, .. }
            | HttpError::Auth { url, .. }
            | HttpError::NotFound { url, .. }
            | HttpError::Rejected { url, .. }
            | HttpError::Rpc { url, .. }
            | HttpError::Protocol { url, .. } => url,
        }
    }

    /// For [`HttpError::Rpc`]: the error code.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            HttpError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// For [`HttpError::Rpc`]: the error object's `data` (`Null` if none).
    pub fn rpc_data(&self) -> Option<&Value> {
        match self {
            HttpError::Rpc { data, .. } => Some(data),
            _ => None,
        }
    }

    pub(crate) fn config(url: &str, reason: impl Into<String>) -> HttpError {
        HttpError::Config { url: url.to_owned(), reason: reason.into() }
    }

    pub(crate) fn unreachable(url: &str, reason: impl Into<String>) -> HttpError {
        HttpError::Unreachable { url: url.to_owned(), reason: reason.into() }
    }

    pub(crate) fn protocol(url: &str, reason: impl Into<String>) -> HttpError {
        HttpError::Protocol { url: url.to_owned(), reason: reason.into() }
    }

    /// An I/O failure on a connection (TLS alerts are TLS errors).
    pub(crate) fn from_io(url: &str, host_port: &str, err: &io::Error) -> HttpError {
        if let Some(tls) = crate::tls::tls_error(url, host_port, err) {
            return tls;
        }
        let reason = match err.kind() {
            io::ErrorKind::ConnectionRefused => {
                "the connection was refused: is the server running, and is this the right port?".to_owned()
            }
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                format!("the connection was lost ({err})")
            }
            _ => format!("connection failed: {err}"),
        };
        HttpError::unreachable(url, reason)
    }
}

/// The server's own words from an error body: a JSON `message` (or the JSON
/// string), cut to a readable length.
pub(crate) fn body_message(body: &Value) -> String {
    let text = match body {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        Value::Object(map) => match map.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => body.to_string(),
        },
        other => other.to_string(),
    };
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
