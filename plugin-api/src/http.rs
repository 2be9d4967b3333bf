//! HTTP(S) and WebSocket requests under a granted base URL (the `http` host
//! interface, WIT 0.1.4). The host does TLS, timeouts and the bearer token;
//! the plugin names the token's secret by config key and never sees it.
//!
//! ```ignore
//! // validate: vec![Want::Http(config.api.clone())]
//! let client = plugin_sdk::http::Client::open(&config.api, ClientOptions {
//!     bearer_secret: Some("api_key".into()),
//!     ..Default::default()
//! })?;
//! let answer = client.request("GET", "/api/v2.0/system/version", None)?;
//! ```

use crate::PluginError;
use crate::bindings::source::orchestrator::plugin::http as host;

pub use host::Response;

/// How to open a [`Client`]. `Default` is the system's trust store, no
/// token and the host's timeouts.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// The SHA-256 fingerprint of the server's certificate (a pin).
    pub tls_fingerprint: Option<String>,
    /// The config key of the secret sent as `Authorization: Bearer`.
    pub bearer_secret: Option<String>,
    /// Connect timeout in milliseconds (host default 15 s).
    pub connect_timeout_ms: Option<u32>,
    /// Timeout of one request or WebSocket message in milliseconds (host default 120 s).
    pub request_timeout_ms: Option<u32>,
}

/// A client held to one base URL.
pub struct Client {
    inner: host::Client,
}

impl Client {
    /// A client for `base_url`, which the plugin must have wanted
    /// (`Want::Http`) and been granted.
    pub fn open(base_url: &str, options: ClientOptions) -> Result<Client, PluginError> {
        let options = host::ClientOptions {
            tls: host::TlsOptions { ca_file: options.ca_file, tls_fingerprint: options.tls_fingerprint },
            bearer_secret: options.bearer_secret,
            connect_timeout_ms: options.connect_timeout_ms,
            request_timeout_ms: options.request_timeout_ms,
        };
        Ok(Client { inner: host::open(base_url, &options)? })
    }

    /// One request; every status is returned for the caller to judge.
    pub fn request(&self, method: &str, path_and_query: &str, body: Option<&str>) -> Result<Response, PluginError> {
        self.inner.request(method, path_and_query, body)
    }

    /// A WebSocket at `path` under the base; `not-found` when the route does not exist.
    pub fn connect(&self, path: &str) -> Result<WebSocket, PluginError> {
        Ok(WebSocket { inner: self.inner.connect(path)? })
    }

    /// The base URL as the host normalised it (ends in `/`).
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }
}

/// A WebSocket carrying text messages.
pub struct WebSocket {
    inner: host::Websocket,
}

impl WebSocket {
    /// Send one text message.
    pub fn send(&self, text: &str) -> Result<(), PluginError> {
        self.inner.send(text)
    }

    /// Send `text` with `placeholder` replaced by the client's bearer secret
    /// (JSON-string escaped) by the host.
    pub fn send_with_secret(&self, text: &str, placeholder: &str) -> Result<(), PluginError> {
        self.inner.send_with_secret(text, placeholder)
    }

    /// The next message.
    pub fn receive(&self) -> Result<String, PluginError> {
        self.inner.receive()
    }

    /// Close politely (dropping closes too).
    pub fn close(&self) {
        self.inner.close()
    }
}
