//! An HTTP endpoint given as one URL: the host's client is held to the
//! URL's origin and each request goes to the URL's path (plus a suffix).

use orchestrator_http::{HttpClient, Method, Secret, Timeouts, TlsConfig};
use std::time::Duration;

/// A URL split for the host's client.
pub(crate) struct Endpoint {
    client: HttpClient,
    /// The URL's path without a trailing `/` (`/ping/UUID`).
    path: String,
    /// `https://host` for messages: the path may be a secret.
    origin: String,
}

impl Endpoint {
    pub(crate) fn new(url: &str, token: Option<String>) -> Result<Endpoint, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the URL is not valid ({e})"))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("the URL must not have a query or fragment".into());
        }
        let origin = parsed.origin().ascii_serialization();
        let mut client = HttpClient::new(&format!("{origin}/"), TlsConfig::default())
            .map_err(|e| e.to_string())?
            // The notifier's own `timeout` bounds the whole delivery.
            .with_timeouts(Timeouts { connect: Duration::from_secs(15), request: Duration::from_secs(600) });
        if let Some(token) = token {
            client = client.with_bearer(Secret::new(token));
        }
        let path = parsed.path().trim_end_matches('/').to_string();
        Ok(Endpoint { client, path, origin })
    }

    /// POST `body` to the URL's path followed by `suffix`; a status other
    /// than 2xx is an error naming it.
    pub(crate) async fn post(&self, suffix: &str, body: String) -> Result<(), String> {
        let target = format!("{}{suffix}", self.path);
        let target = if target.starts_with('/') { target } else { format!("/{target}") };
        // Errors name the URL they reached: shown by its origin only.
        let shown = |e: orchestrator_http::HttpError| match self.client.url_of(&target) {
            Ok(url) => e.to_string().replace(&url, &format!("{}/…", self.origin)),
            Err(_) => e.to_string(),
        };
        let (status, answer) = self.client.request_text(Method::POST, &target, Some(body)).await.map_err(shown)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let answer: String = answer.chars().take(300).collect();
            Err(format!("{} answered HTTP {status}: {}", self.origin, answer.trim()))
        }
    }
}

/// The path (and what follows) of every URL among `values`: a healthchecks
/// UUID or an ntfy topic is the secret, and an error may show it alone.
pub(crate) fn secret_paths(values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| url::Url::parse(v).ok())
        .map(|u| u.path().trim_matches('/').to_string())
        .filter(|p| p.len() >= 6)
        .collect()
}
