//! The [`Transport`] over `orchestrator-http` (hyper, tokio-tungstenite,
//! rustls) for native callers: the crate's tests against the fake TrueNAS,
//! and tools. Each transport owns a small single-threaded tokio runtime and
//! blocks on it, so it must not be used from inside an async task.

use std::sync::Arc;

use orchestrator_http::{ErrorKind as HttpKind, HttpClient, HttpError, Method, Secret, Timeouts, TlsConfig, WsClient};

use crate::client::TrueNas;
use crate::error::TrueNasError;
use crate::transport::{Socket, Transport, TransportError, TransportErrorKind};

/// Where and how to reach the NAS.
#[derive(Debug, Clone)]
pub struct TrueNasConfig {
    /// `https://nas.example` (or `http://` to a loopback address).
    pub url: String,
    pub api_key: Secret,
    /// The user the API key belongs to (see [`TrueNas::connect`]).
    pub username: Option<String>,
    pub tls: TlsConfig,
    pub timeouts: Timeouts,
}

impl TrueNasConfig {
    pub fn new(url: impl Into<String>, api_key: Secret) -> TrueNasConfig {
        TrueNasConfig {
            url: url.into(),
            api_key,
            username: None,
            tls: TlsConfig::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// HTTP and WebSockets through `orchestrator-http`, with the API key as the
/// bearer token.
pub struct NativeTransport {
    http: HttpClient,
    key: Secret,
    runtime: Arc<tokio::runtime::Runtime>,
}

/// A WebSocket of a [`NativeTransport`].
pub struct NativeSocket {
    ws: Option<WsClient>,
    key: Secret,
    runtime: Arc<tokio::runtime::Runtime>,
}

fn convert(e: HttpError) -> TransportError {
    let kind = match (&e, e.kind()) {
        (HttpError::Rejected { .. }, _) => TransportErrorKind::NotFound,
        (_, HttpKind::Config) => TransportErrorKind::Config,
        (_, HttpKind::Unreachable) => TransportErrorKind::Unreachable,
        (_, HttpKind::Timeout) => TransportErrorKind::Timeout,
        (_, HttpKind::Tls) => TransportErrorKind::Tls,
        (_, HttpKind::Auth) => TransportErrorKind::Auth,
        (_, HttpKind::NotFound) => TransportErrorKind::NotFound,
        (_, HttpKind::Rpc | HttpKind::Protocol) => TransportErrorKind::Protocol,
    };
    let message = match &e {
        HttpError::Auth { message, .. } => message.clone(),
        _ => e.to_string(),
    };
    TransportError::new(kind, message)
}

impl NativeTransport {
    pub fn new(config: &TrueNasConfig) -> Result<NativeTransport, TransportError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TransportError::new(TransportErrorKind::Config, format!("starting a runtime: {e}")))?;
        let http = HttpClient::new(&config.url, config.tls.clone())
            .map_err(convert)?
            .with_timeouts(config.timeouts)
            .with_bearer(config.api_key.clone());
        Ok(NativeTransport { http, key: config.api_key.clone(), runtime: Arc::new(runtime) })
    }
}

impl Transport for NativeTransport {
    type Socket = NativeSocket;

    fn base_url(&self) -> String {
        self.http.base_url()
    }

    fn request(&self, method: &str, path: &str, body: Option<String>) -> Result<(u16, String), TransportError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| TransportError::new(TransportErrorKind::Config, format!("bad method {method}")))?;
        self.runtime.block_on(self.http.request_text(method, path, body)).map_err(convert)
    }

    fn connect(&self, path: &str) -> Result<NativeSocket, TransportError> {
        let ws = self.runtime.block_on(WsClient::connect(&self.http, path)).map_err(convert)?;
        Ok(NativeSocket { ws: Some(ws), key: self.key.clone(), runtime: self.runtime.clone() })
    }
}

/// `value` escaped as the inside of a JSON string.
pub fn json_string_inside(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

impl Socket for NativeSocket {
    fn send(&mut self, text: String) -> Result<(), TransportError> {
        let ws = self.ws.as_mut().ok_or_else(closed)?;
        self.runtime.block_on(ws.send_text(text)).map_err(convert)
    }

    fn send_with_key(&mut self, text: String, placeholder: &str) -> Result<(), TransportError> {
        let text = text.replace(placeholder, &json_string_inside(self.key.expose()));
        self.send(text)
    }

    fn receive(&mut self) -> Result<String, TransportError> {
        let ws = self.ws.as_mut().ok_or_else(closed)?;
        self.runtime.block_on(ws.recv_text()).map_err(convert)
    }

    fn close(&mut self) {
        if let Some(ws) = self.ws.take() {
            self.runtime.block_on(ws.close());
        }
    }
}

fn closed() -> TransportError {
    TransportError::new(TransportErrorKind::Unreachable, "the WebSocket is closed")
}

impl TrueNas<NativeTransport> {
    /// Connects with `orchestrator-http` (see [`TrueNas::connect`]).
    pub fn connect_native(config: TrueNasConfig) -> Result<TrueNas<NativeTransport>, TrueNasError> {
        let shown = config.url.trim().to_owned();
        let transport = NativeTransport::new(&config).map_err(|source| TrueNasError::Connection {
            url: shown,
            dataset: String::new(),
            source,
        })?;
        TrueNas::connect(transport, config.username.as_deref())
    }
}
