//! [`HttpClient`]: JSON requests under one base URL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde_json::Value;

use crate::base::Base;
use crate::error::{HttpError, body_message};
use crate::secret::Secret;
use crate::tls::{TlsConfig, client_config};

/// The largest response body read (an API answer, not bulk data).
const MAX_BODY: usize = 32 * 1024 * 1024;

pub(crate) const AGENT: &str = concat!("orchestrator/", env!("CARGO_PKG_VERSION"));

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Name resolution, TCP connect and the TLS handshake together.
    pub connect: Duration,
    /// One request and its whole answer; for WebSocket, one message (and for
    /// [`crate::JsonRpc::call`], one call's answer).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { connect: Duration::from_secs(15), request: Duration::from_secs(120) }
    }
}

/// An HTTP(S) client held to one base URL. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    base: Arc<Base>,
    tls: Arc<TlsConfig>,
    tls_config: Option<Arc<ClientConfig>>,
    timeouts: Timeouts,
    bearer: Option<Secret>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base.url())
            .field("tls", &self.tls)
            .field("timeouts", &self.timeouts)
            .field("bearer", &self.bearer)
            .finish()
    }
}

impl HttpClient {
    /// A client for `base_url` (`https://host[:port][/prefix/]`, or
    /// `http://` to a loopback address). The TLS configuration (the CA file
    /// or the pin) is checked now; nothing is connected yet.
    pub fn new(base_url: &str, tls: TlsConfig) -> Result<HttpClient, HttpError> {
        let base = Base::parse(base_url)?;
        let tls_config = if base.tls { Some(client_config(&tls, &base.url())?) } else { None };
        Ok(HttpClient {
            base: Arc::new(base),
            tls: Arc::new(tls),
            tls_config,
            timeouts: Timeouts::default(),
            bearer: None,
        })
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> HttpClient {
        self.timeouts = timeouts;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request (and the
    /// WebSocket handshake).
    pub fn with_bearer(mut self, token: Secret) -> HttpClient {
        self.bearer = Some(token);
        self
    }

    /// The base URL, as normalised (ends in `/`).
    pub fn base_url(&self) -> String {
        self.base.url()
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The full URL `path_and_query` would reach, or the refusal.
    pub fn url_of(&self, path_and_query: &str) -> Result<String, HttpError> {
        self.base.resolve(path_and_query)
    }

    pub(crate) fn base(&self) -> &Base {
        &self.base
    }

    pub(crate) fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    pub(crate) fn tls_config(&self) -> Option<&Arc<ClientConfig>> {
        self.tls_config.as_ref()
    }

    pub(crate) fn authorization(&self) -> Option<HeaderValue> {
        let token = self.bearer.as_ref()?;
        let text = zeroize::Zeroizing::new(format!("Bearer {}", token.expose()));
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// One request: `path_and_query` is an absolute path under the base
    /// (`/api/v2.0/pool/dataset/id/tank%2Fdata`), `body` is sent as JSON.
    ///
    /// Returns the status and the answer as JSON (`Null` for an empty body,
    /// a JSON string for a body that is not JSON). 401 and 403 are
    /// [`HttpError::Auth`] and 404 is [`HttpError::NotFound`]; every other
    /// status is returned for the caller to judge.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HttpError> {
        let url = self.base.resolve(path_and_query)?;
        let payload = body.map(|json| Bytes::from(json.to_string()));
        let (status, bytes) = self.send(&url, method, payload).await?;
        let json = parse_body(&bytes);
        match status {
            401 | 403 => Err(HttpError::Auth { url, status, message: body_message(&json) }),
            404 => Err(HttpError::NotFound { url, message: body_message(&json) }),
            _ => Ok((status, json)),
        }
    }

    /// One request with a text body (sent as `application/json`), answered
    /// with the status and the body as text (invalid UTF-8 replaced). Unlike
    /// [`HttpClient::request`], every status is returned, 401, 403 and 404
    /// too: this is what the host's `http` capability hands to plugins.
    pub async fn request_text(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, String), HttpError> {
        let url = self.base.resolve(path_and_query)?;
        let (status, bytes) = self.send(&url, method, body.map(Bytes::from)).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn send(&self, url: &str, method: Method, payload: Option<Bytes>) -> Result<(u16, Bytes), HttpError> {
        let stream = crate::stream::connect(self, url).await?;
        let after = self.timeouts.request;
        match tokio::time::timeout(after, self.exchange(url, stream, method, payload)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout { url: url.to_owned(), during: "waiting for the answer", after }),
        }
    }

    async fn exchange(
        &self,
        url: &str,
        stream: crate::stream::Stream,
        method: Method,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes), HttpError> {
        let host_port = self.base.host_port();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| hyper_error(url, &host_port, &e))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::builder()
            .method(method)
            .uri(self.base.target(url))
            .header(HOST, self.base.authority())
            .header(USER_AGENT, AGENT)
            .header(ACCEPT, "application/json");
        if let Some(auth) = self.authorization() {
            request = request.header(AUTHORIZATION, auth);
        }
        let payload = match body {
            Some(bytes) => {
                request = request.header(CONTENT_TYPE, "application/json");
                bytes
            }
            None => Bytes::new(),
        };
        let request =
            request.body(Full::new(payload)).map_err(|e| HttpError::protocol(url, format!("bad request: {e}")))?;
        let result = async {
            let response = sender.send_request(request).await.map_err(|e| hyper_error(url, &host_port, &e))?;
            let status = response.status().as_u16();
            let bytes = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::protocol(url, format!("reading the answer failed: {e}")))?
                .to_bytes();
            Ok::<_, HttpError>((status, bytes))
        }
        .await;
        driver.abort();
        result
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn hyper_error(url: &str, host_port: &str, err: &hyper::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return HttpError::from_io(url, host_port, io);
        }
        source = e.source();
    }
    if err.is_incomplete_message() || err.is_closed() {
        return HttpError::unreachable(url, "the server closed the connection without answering");
    }
    HttpError::protocol(url, format!("HTTP exchange failed: {err}"))
}
