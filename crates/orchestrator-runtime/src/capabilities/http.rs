//! HTTP(S) and WebSocket requests for plugins (WIT `http`, since 0.1.4), over
//! `orchestrator-http`: one client per granted base URL, TLS and timeouts by
//! the host, the bearer token resolved from the plugin's secrets by config
//! key, so its value never enters the plugin.

use crate::bindings::PluginError;
use crate::bindings::source::orchestrator::plugin::http as wit;
use crate::state::PluginState;
use orchestrator_http::{HttpClient, HttpError, Method, Secret, Timeouts, TlsConfig, WsClient};
use std::time::Duration;
use wasmtime::component::Resource;

/// Clients and WebSockets one plugin may hold open at once.
const MAX_OPEN: usize = 64;

/// The base URLs one plugin instance was granted.
#[derive(Debug, Default, Clone)]
pub struct HttpCtx {
    granted: Vec<String>,
    /// The string values of the plugin's configuration: the only CA files
    /// it may name.
    files: Vec<String>,
    open: usize,
}

impl HttpCtx {
    /// Grants for `bases` (the plugin's `http` wants the pipeline granted).
    pub fn new(bases: &[String], config_values: Vec<String>) -> HttpCtx {
        HttpCtx { granted: bases.to_vec(), files: config_values, open: 0 }
    }

    fn allows(&self, base_url: &str) -> bool {
        let wanted = base_url.trim();
        self.granted.iter().any(|g| crate::grants::url_under(wanted, g))
    }
}

/// A client handed to a plugin.
pub struct Client {
    http: HttpClient,
    /// The bearer secret, for `send-with-secret`.
    token: Option<Secret>,
}

/// A WebSocket handed to a plugin.
pub struct WebSocket {
    ws: Option<WsClient>,
    url: String,
    token: Option<Secret>,
}

/// The plugin error for a failure of `orchestrator-http` (its message names
/// the URL and never holds the token).
pub fn plugin_error(e: HttpError) -> PluginError {
    use orchestrator_http::ErrorKind as K;
    let text = e.to_string();
    match (&e, e.kind()) {
        (HttpError::Rejected { .. }, _) | (_, K::NotFound) => PluginError::NotFound(text),
        (_, K::Config) => PluginError::Config(text),
        (_, K::Unreachable | K::Timeout) => PluginError::Transient(text),
        (_, K::Auth) => PluginError::PermissionDenied(text),
        (_, K::Tls | K::Rpc | K::Protocol) => PluginError::Other(text),
    }
}

fn method_of(method: &str) -> Result<Method, PluginError> {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        "HEAD" => Ok(Method::HEAD),
        other => Err(PluginError::Config(format!("HTTP method {other:?} is not one of GET, POST, PUT, PATCH, DELETE"))),
    }
}

/// `value` escaped as the inside of a JSON string.
fn json_inside(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

impl PluginState {
    fn open_client(&mut self, base_url: &str, options: wit::ClientOptions) -> Result<Client, PluginError> {
        if !self.http.allows(base_url) {
            return Err(PluginError::PermissionDenied(format!(
                "HTTP requests to {base_url} were not granted: the plugin must want it (`http` want) and the \
                 URL must be in its configuration or in allow.http"
            )));
        }
        if self.http.open >= MAX_OPEN {
            return Err(PluginError::Other(format!("more than {MAX_OPEN} HTTP clients and WebSockets open at once")));
        }
        if let Some(ca) = &options.tls.ca_file
            && !self.http.files.contains(ca)
        {
            return Err(PluginError::PermissionDenied(format!(
                "the plugin named the CA file {ca} for {base_url}, which is not a value of its configuration"
            )));
        }
        let tls =
            TlsConfig { ca_file: options.tls.ca_file.map(Into::into), tls_fingerprint: options.tls.tls_fingerprint };
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            connect: options.connect_timeout_ms.map_or(defaults.connect, |ms| Duration::from_millis(ms.into())),
            request: options.request_timeout_ms.map_or(defaults.request, |ms| Duration::from_millis(ms.into())),
        };
        let mut http = HttpClient::new(base_url, tls).map_err(plugin_error)?.with_timeouts(timeouts);
        let token = match options.bearer_secret {
            None => None,
            Some(name) => match self.secrets.get(&name) {
                Some(value) => Some(Secret::new(value.expose())),
                None => {
                    return Err(PluginError::Config(format!(
                        "no secret `{name}` in this plugin's configuration (write {name} = {{ env = \"...\" }} \
                         or another secret reference)"
                    )));
                }
            },
        };
        if let Some(token) = &token {
            http = http.with_bearer(token.clone());
        }
        self.http.open += 1;
        Ok(Client { http, token })
    }
}

impl wit::Host for PluginState {
    async fn open(
        &mut self,
        base_url: String,
        options: wit::ClientOptions,
    ) -> wasmtime::Result<Result<Resource<Client>, PluginError>> {
        match self.open_client(&base_url, options) {
            Ok(client) => Ok(Ok(self.table.push(client)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit::HostClient for PluginState {
    async fn request(
        &mut self,
        this: Resource<Client>,
        method: String,
        path_and_query: String,
        body: Option<String>,
    ) -> wasmtime::Result<Result<wit::Response, PluginError>> {
        let method = match method_of(&method) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let http = self.table.get(&this)?.http.clone();
        Ok(http
            .request_text(method, &path_and_query, body)
            .await
            .map(|(status, body)| wit::Response { status, body })
            .map_err(plugin_error))
    }

    async fn connect(
        &mut self,
        this: Resource<Client>,
        path: String,
    ) -> wasmtime::Result<Result<Resource<WebSocket>, PluginError>> {
        if self.http.open >= MAX_OPEN {
            return Ok(Err(PluginError::Other(format!(
                "more than {MAX_OPEN} HTTP clients and WebSockets open at once"
            ))));
        }
        let client = self.table.get(&this)?;
        let (http, token) = (client.http.clone(), client.token.clone());
        match WsClient::connect(&http, &path).await {
            Ok(ws) => {
                self.http.open += 1;
                let url = ws.url().to_owned();
                Ok(Ok(self.table.push(WebSocket { ws: Some(ws), url, token })?))
            }
            Err(e) => Ok(Err(plugin_error(e))),
        }
    }

    async fn base_url(&mut self, this: Resource<Client>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.http.base_url())
    }

    async fn drop(&mut self, this: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.http.open = self.http.open.saturating_sub(1);
        Ok(())
    }
}

fn closed(url: &str) -> PluginError {
    PluginError::Transient(format!("{url}: the WebSocket is closed"))
}

impl wit::HostWebsocket for PluginState {
    async fn send(&mut self, this: Resource<WebSocket>, text: String) -> wasmtime::Result<Result<(), PluginError>> {
        let socket = self.table.get_mut(&this)?;
        let Some(ws) = socket.ws.as_mut() else { return Ok(Err(closed(&socket.url))) };
        Ok(ws.send_text(text).await.map_err(plugin_error))
    }

    async fn send_with_secret(
        &mut self,
        this: Resource<WebSocket>,
        text: String,
        placeholder: String,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let socket = self.table.get_mut(&this)?;
        if placeholder.chars().count() < 8 {
            return Ok(Err(PluginError::Config(
                "send-with-secret: the placeholder must have 8 characters or more".into(),
            )));
        }
        let Some(token) = &socket.token else {
            return Ok(Err(PluginError::Config(format!(
                "{}: send-with-secret needs a client opened with a bearer secret",
                socket.url
            ))));
        };
        let text = text.replace(&placeholder, &json_inside(token.expose()));
        let Some(ws) = socket.ws.as_mut() else { return Ok(Err(closed(&socket.url))) };
        Ok(ws.send_text(text).await.map_err(plugin_error))
    }

    async fn receive(&mut self, this: Resource<WebSocket>) -> wasmtime::Result<Result<String, PluginError>> {
        let socket = self.table.get_mut(&this)?;
        let Some(ws) = socket.ws.as_mut() else { return Ok(Err(closed(&socket.url))) };
        Ok(ws.recv_text().await.map_err(plugin_error))
    }

    async fn close(&mut self, this: Resource<WebSocket>) -> wasmtime::Result<()> {
        let socket = self.table.get_mut(&this)?;
        if let Some(ws) = socket.ws.take() {
            ws.close().await;
        }
        Ok(())
    }

    async fn drop(&mut self, this: Resource<WebSocket>) -> wasmtime::Result<()> {
        let socket = self.table.delete(this)?;
        if let Some(ws) = socket.ws {
            ws.close().await;
        }
        self.http.open = self.http.open.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_hold_requests_to_their_base() {
        let ctx = HttpCtx::new(&["https://nas.lan".to_string()], vec![]);
        assert!(ctx.allows("https://nas.lan"));
        assert!(ctx.allows("https://nas.lan/"));
        assert!(ctx.allows("https://nas.lan/api"));
        assert!(!ctx.allows("https://nas.lan.evil"));
        assert!(!ctx.allows("https://other"));
        assert_eq!(json_inside("a\"b\\c"), "a\\\"b\\\\c");
    }
}
