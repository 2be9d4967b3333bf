//! An HTTP(S) and WebSocket client for the host's capabilities, held to one
//! base URL.
//!
//! * **One base URL.** [`HttpClient::new`] takes the base (`https://nas.example/`,
//!   or `https://host/prefix/`); a request or WebSocket path that would leave it
//!   (another host, `..`, `//host`, an absolute URL) is refused before any
//!   connection is made.
//! * **TLS** by rustls with the ring provider: the system's roots, or a
//!   `ca_file` (PEM), or a pinned certificate (`tls_fingerprint`, the SHA-256
//!   of the server's leaf certificate; with a pin the chain need not verify
//!   but the pin must match). Plain `http://` and `ws://` only to loopback
//!   addresses, checked after name resolution and before connecting.
//! * **Timeouts** for connecting and for each exchange ([`Timeouts`]).
//! * **Bearer token** from a [`Secret`], which never prints.
//! * **WebSocket** ([`WsClient`]) over the same connection code, and
//!   **JSON-RPC 2.0** over it ([`JsonRpc`]): ids, matching responses, error
//!   objects as [`HttpError::Rpc`], notifications skipped.
//!
//! Each request opens its own connection (HTTP/1.1, no pool, no proxy, no
//! redirects): the callers make a handful of API calls per run.

mod base;
mod client;
mod error;
mod jsonrpc;
mod secret;
mod stream;
mod tls;
mod ws;

pub use client::{HttpClient, Timeouts};
pub use error::{ErrorKind, HttpError};
pub use hyper::Method;
pub use jsonrpc::JsonRpc;
pub use secret::Secret;
pub use tls::{TlsConfig, fingerprint_of_der};
pub use ws::WsClient;
