//! [`WsClient`]: a WebSocket under the client's base URL, carrying JSON.

use futures_util::{SinkExt, StreamExt};
use hyper::header::{AUTHORIZATION, USER_AGENT};
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::{AGENT, HttpClient};
use crate::error::{HttpError, body_message};
use crate::stream::Stream;

/// A WebSocket connection sending and receiving JSON text messages.
pub struct WsClient {
    ws: WebSocketStream<Stream>,
    url: String,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl WsClient {
    /// Connects to `path` under the client's base (`ws://` for an `http://`
    /// base, `wss://` for `https://`), with the client's TLS, timeouts and
    /// bearer token. A route that does not exist is [`HttpError::NotFound`].
    pub async fn connect(client: &HttpClient, path: &str) -> Result<WsClient, HttpError> {
        let http_url = client.url_of(path)?;
        let url = match http_url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", http_url.strip_prefix("http://").unwrap_or(&http_url)),
        };
        let stream = crate::stream::connect(client, &url).await?;
        let mut request =
            url.as_str().into_client_request().map_err(|e| HttpError::protocol(&url, format!("bad URL: {e}")))?;
        request.headers_mut().insert(USER_AGENT, hyper::header::HeaderValue::from_static(AGENT));
        if let Some(auth) = client.authorization() {
            request.headers_mut().insert(AUTHORIZATION, auth);
        }
        let after = client.timeouts().request;
        let handshake = tokio_tungstenite::client_async(request, stream);
        let (ws, _response) = match tokio::time::timeout(after, handshake).await {
            Err(_) => return Err(HttpError::Timeout { url, during: "opening the WebSocket", after }),
            Ok(Err(e)) => return Err(handshake_error(&url, client, e)),
            Ok(Ok(pair)) => pair,
        };
        Ok(WsClient { ws, url, timeout: after })
    }

    /// The `ws://` or `wss://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    pub async fn send_json(&mut self, value: &Value) -> Result<(), HttpError> {
        self.send_text(value.to_string()).await
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: String) -> Result<(), HttpError> {
        let send = self.ws.send(Message::text(text));
        match tokio::time::timeout(self.timeout, send).await {
            Err(_) => Err(HttpError::Timeout { url: self.url.clone(), during: "sending", after: self.timeout }),
            Ok(Err(e)) => Err(ws_error(&self.url, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next JSON message (text or binary), answering pings on the way.
    pub async fn recv_json(&mut self) -> Result<Value, HttpError> {
        match tokio::time::timeout(self.timeout, self.next_json()).await {
            Err(_) => {
                Err(HttpError::Timeout { url: self.url.clone(), during: "waiting for a message", after: self.timeout })
            }
            Ok(result) => result,
        }
    }

    pub(crate) async fn next_json(&mut self) -> Result<Value, HttpError> {
        let bytes = self.next_message().await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| HttpError::protocol(&self.url, format!("the server sent a message that is not JSON ({e})")))
    }

    /// The next text (or binary, as lossy UTF-8) message, answering pings on
    /// the way, within the request timeout.
    pub async fn recv_text(&mut self) -> Result<String, HttpError> {
        match tokio::time::timeout(self.timeout, self.next_message()).await {
            Err(_) => {
                Err(HttpError::Timeout { url: self.url.clone(), during: "waiting for a message", after: self.timeout })
            }
            Ok(result) => result.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    async fn next_message(&mut self) -> Result<Vec<u8>, HttpError> {
        loop {
            let message = match self.ws.next().await {
                None => return Err(HttpError::unreachable(&self.url, "the server closed the WebSocket")),
                Some(Err(e)) => return Err(ws_error(&self.url, e)),
                Some(Ok(m)) => m,
            };
            let bytes = match message {
                Message::Text(text) => text.as_bytes().to_vec(),
                Message::Binary(bytes) => bytes.to_vec(),
                Message::Close(frame) => {
                    let why = frame.map(|f| format!(" ({}: {})", f.code, f.reason)).unwrap_or_default();
                    return Err(HttpError::unreachable(&self.url, format!("the server closed the WebSocket{why}")));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return Ok(bytes);
        }
    }

    /// Closes the connection politely (errors are ignored: it is going away).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ws.close(None)).await;
    }
}

fn handshake_error(url: &str, client: &HttpClient, err: tungstenite::Error) -> HttpError {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
            let message = body_message(&body.map(Value::String).unwrap_or(Value::Null));
            match status {
                401 | 403 => HttpError::Auth { url: url.to_owned(), status, message },
                404 => HttpError::NotFound { url: url.to_owned(), message },
                _ => HttpError::Rejected { url: url.to_owned(), status, message },
            }
        }
        tungstenite::Error::Io(e) => HttpError::from_io(url, &client.base().host_port(), &e),
        other => HttpError::protocol(url, format!("the WebSocket handshake failed: {other}")),
    }
}

fn ws_error(url: &str, err: tungstenite::Error) -> HttpError {
    match err {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            HttpError::unreachable(url, "the WebSocket is closed")
        }
        tungstenite::Error::Io(e) => HttpError::unreachable(url, format!("the connection was lost ({e})")),
        other => HttpError::protocol(url, format!("WebSocket error: {other}")),
    }
}
