//! What the client needs from the network: HTTP requests and text WebSockets
//! under the NAS's base URL, with the API key held by whoever implements it.
//!
//! Inside the `truenas-dataset` plugin this is the host's `http` capability;
//! natively (tests, tools) it is `orchestrator-http` ([`crate::native`]).
//! The API key never passes through this crate: REST requests carry it as
//! the transport's bearer token, and the JSON-RPC login is sent with
//! [`Socket::send_with_key`], which puts the key in place of a placeholder.

use std::fmt;

/// What kind of failure, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// A bad URL, a path outside the base URL, plain HTTP over a network, an
    /// unreadable CA file.
    Config,
    /// The server could not be reached, or the connection was lost.
    Unreachable,
    /// The server did not answer in time.
    Timeout,
    /// TLS failed: untrusted certificate, pin mismatch.
    Tls,
    /// The credentials were refused (WebSocket handshake 401 or 403).
    Auth,
    /// The WebSocket route does not exist (404, or no upgrade).
    NotFound,
    /// Anything else.
    Protocol,
}

/// A transport failure: its kind and a message for people (naming the URL,
/// never holding the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError { kind, message: message.into() }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

/// HTTP under one base URL.
pub trait Transport {
    /// The WebSocket type [`Transport::connect`] opens.
    type Socket: Socket;
    /// The base URL, for messages (`https://nas.lan/`).
    fn base_url(&self) -> String;
    /// One request (`GET`, `POST`, `DELETE`, ...) to `path_and_query` under
    /// the base, a JSON body as text; the status and the body as text. Every
    /// status is returned, 401 and 404 too.
    fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, String), TransportError>;
    /// A WebSocket at `path` under the base. A route that does not exist is
    /// [`TransportErrorKind::NotFound`].
    fn connect(&self, path: &str) -> Result<Self::Socket, TransportError>;
}

/// A WebSocket carrying text messages.
pub trait Socket {
    fn send(&mut self, text: String) -> Result<(), TransportError>;
    /// Sends `text` with every `placeholder` replaced by the API key, escaped
    /// as the inside of a JSON string.
    fn send_with_key(&mut self, text: String, placeholder: &str) -> Result<(), TransportError>;
    /// The next message (within the transport's timeout).
    fn receive(&mut self) -> Result<String, TransportError>;
    fn close(&mut self);
}
