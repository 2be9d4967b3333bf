//! [`orchestrator_truenas::Transport`] over the host's `http` capability.
//! The API key is the client's bearer secret: the host sends it with REST
//! requests and puts it into the JSON-RPC login (`send-with-secret`).

use orchestrator_truenas::{Socket, Transport, TransportError, TransportErrorKind};
use plugin_sdk::PluginError;
use plugin_sdk::http::{Client, ClientOptions, WebSocket};

use crate::config::Config;

/// Requests and WebSockets under the configured `api`.
pub struct WitTransport {
    client: Client,
}

/// A WebSocket of a [`WitTransport`].
pub struct WitSocket {
    ws: WebSocket,
}

fn convert(e: PluginError) -> TransportError {
    let kind = match &e {
        PluginError::NotFound(_) => TransportErrorKind::NotFound,
        PluginError::Transient(_) => TransportErrorKind::Unreachable,
        PluginError::PermissionDenied(_) => TransportErrorKind::Auth,
        PluginError::Config(_) => TransportErrorKind::Config,
        _ => TransportErrorKind::Protocol,
    };
    TransportError::new(kind, e.message())
}

impl WitTransport {
    /// A client for `config.api` with its TLS options and the API key.
    pub fn open(config: &Config) -> Result<WitTransport, PluginError> {
        let options = ClientOptions {
            ca_file: config.ca_file.clone(),
            tls_fingerprint: config.tls_fingerprint.clone(),
            bearer_secret: Some(config.api_key.name().to_owned()),
            ..ClientOptions::default()
        };
        Ok(WitTransport { client: Client::open(config.api.trim(), options)? })
    }
}

impl Transport for WitTransport {
    type Socket = WitSocket;

    fn base_url(&self) -> String {
        self.client.base_url()
    }

    fn request(&self, method: &str, path: &str, body: Option<String>) -> Result<(u16, String), TransportError> {
        let answer = self.client.request(method, path, body.as_deref()).map_err(convert)?;
        Ok((answer.status, answer.body))
    }

    fn connect(&self, path: &str) -> Result<WitSocket, TransportError> {
        Ok(WitSocket { ws: self.client.connect(path).map_err(convert)? })
    }
}

impl Socket for WitSocket {
    fn send(&mut self, text: String) -> Result<(), TransportError> {
        self.ws.send(&text).map_err(convert)
    }

    fn send_with_key(&mut self, text: String, placeholder: &str) -> Result<(), TransportError> {
        self.ws.send_with_secret(&text, placeholder).map_err(convert)
    }

    fn receive(&mut self) -> Result<String, TransportError> {
        self.ws.receive().map_err(convert)
    }

    fn close(&mut self) {
        self.ws.close();
    }
}
