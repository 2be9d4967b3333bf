//! The base URL a client is held to, and the check that a request stays in it.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::HttpError;

#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// `scheme://host[:port]` with no path, for messages and joining.
    origin: String,
    /// The path every request must stay under, ending in `/`.
    prefix: String,
    pub(crate) tls: bool,
    /// The host as the TLS server name and `Host` header want it (no brackets).
    pub(crate) host: Host<String>,
    pub(crate) port: u16,
}

impl Base {
    pub(crate) fn parse(base_url: &str) -> Result<Base, HttpError> {
        let shown = base_url.trim();
        let url = Url::parse(shown).map_err(|e| {
            HttpError::config(shown, format!("not a valid URL ({e}); write it as https://host[:port]/"))
        })?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(HttpError::config(
                    shown,
                    format!("the scheme {other:?} is not supported; use https:// (or http:// to a loopback address)"),
                ));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::config(
                "(URL with credentials, not shown)",
                "the URL holds a user name or password; remove them and give the API key as a secret",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(HttpError::config(shown, "the base URL must not have a query or fragment"));
        }
        let host = match url.host() {
            Some(Host::Domain(d)) => Host::Domain(d.to_owned()),
            Some(Host::Ipv4(ip)) => Host::Ipv4(ip),
            Some(Host::Ipv6(ip)) => Host::Ipv6(ip),
            None => return Err(HttpError::config(shown, "the URL has no host")),
        };
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let origin = match url.port() {
            Some(p) => format!("{}://{}:{p}", url.scheme(), url.host_str().unwrap_or_default()),
            None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()),
        };
        let mut prefix = url.path().to_owned();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let base = Base { origin, prefix, tls, host, port };
        if !tls
            && let Some(ip) = base.ip()
            && !ip.is_loopback()
        {
            return Err(base.plain_not_loopback());
        }
        Ok(base)
    }

    /// The base as written back: `origin` + prefix.
    pub(crate) fn url(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }

    /// The host without brackets, for DNS and the TLS server name.
    pub(crate) fn host_name(&self) -> String {
        match &self.host {
            Host::Domain(d) => d.clone(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        }
    }

    /// `host:port` as `openssl s_client -connect` takes it.
    pub(crate) fn host_port(&self) -> String {
        match &self.host {
            Host::Ipv6(ip) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host_name(), self.port),
        }
    }

    /// The `Host` header value.
    pub(crate) fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = match &self.host {
            Host::Ipv6(ip) => format!("[{ip}]"),
            _ => self.host_name(),
        };
        if self.port == default { host } else { format!("{host}:{}", self.port) }
    }

    pub(crate) fn plain_not_loopback(&self) -> HttpError {
        HttpError::config(
            &self.url(),
            "plain http:// is only allowed to a loopback address (127.0.0.1, ::1, localhost); use https:// \
             so the API key and the data are not sent in clear over the network",
        )
    }

    /// The full URL of `path_and_query` (an absolute path such as
    /// `/api/v2.0/pool/dataset?limit=1`), refused unless it stays under the
    /// base: same scheme, host and port, a path under the base path, no `.`
    /// or `..` segments, no fragment.
    pub(crate) fn resolve(&self, path_and_query: &str) -> Result<String, HttpError> {
        let refuse = |why: &str| {
            HttpError::config(
                &self.url(),
                format!(
                    "the request path {path_and_query:?} is refused: {why}; this client only reaches {}",
                    self.url()
                ),
            )
        };
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return Err(refuse("it must be an absolute path on this server, starting with a single /"));
        }
        if path_and_query.chars().any(|c| c.is_control() || c == ' ' || c == '\\' || c == '#') {
            return Err(refuse("it holds a space, a control character, a backslash or a #"));
        }
        let path = path_and_query.split('?').next().unwrap_or_default();
        for segment in path.split('/') {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            if decoded == "." || decoded == ".." {
                return Err(refuse("it holds a . or .. segment"));
            }
        }
        let full = format!("{}{path_and_query}", self.origin);
        let parsed = Url::parse(&full).map_err(|e| refuse(&format!("it does not make a valid URL ({e})")))?;
        let same_origin = parsed.host_str().map(str::to_owned) == self.origin_host()
            && parsed.port_or_known_default() == Some(self.port);
        if !same_origin {
            return Err(refuse("it leads to another server"));
        }
        let in_prefix = parsed.path().starts_with(&self.prefix) || format!("{}/", parsed.path()) == self.prefix;
        if !in_prefix {
            return Err(refuse(&format!("it is outside {}", self.prefix)));
        }
        Ok(full)
    }

    fn origin_host(&self) -> Option<String> {
        Url::parse(&self.origin).ok().and_then(|u| u.host_str().map(str::to_owned))
    }

    /// The path and query of a resolved URL (the request target).
    pub(crate) fn target<'a>(&self, full: &'a str) -> &'a str {
        &full[self.origin.len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_under_the_base() {
        let base = Base::parse("https://nas.example/api/").unwrap();
        assert_eq!(base.resolve("/api/v2.0/x?a=1").unwrap(), "https://nas.example/api/v2.0/x?a=1");
        assert!(base.resolve("/api").is_ok());
        for bad in ["/other", "//evil.example/api/", "api/x", "/api/../etc", "/api/%2E%2e/x", "/api/x#f", "/apix"] {
            let err = base.resolve(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
        }
        let err = base.resolve("/api/../x").unwrap_err().to_string();
        assert!(err.contains("https://nas.example/api/"), "{err}");
    }

    #[test]
    fn plain_http_only_to_loopback_literals() {
        assert!(Base::parse("http://127.0.0.1:8080").is_ok());
        assert!(Base::parse("http://[::1]:8080/").is_ok());
        assert!(Base::parse("http://localhost:8080/").is_ok(), "names are checked after resolution");
        let err = Base::parse("http://192.0.2.10/").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(Base::parse("ftp://x/").is_err());
        let err = Base::parse("https://root:hunter2@nas/").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn authority_and_host_port() {
        let b = Base::parse("https://[::1]:8443/").unwrap();
        assert_eq!(b.authority(), "[::1]:8443");
        assert_eq!(b.host_port(), "[::1]:8443");
        assert_eq!(b.host_name(), "::1");
        let b = Base::parse("https://nas.example").unwrap();
        assert_eq!(b.authority(), "nas.example");
        assert_eq!(b.url(), "https://nas.example/");
    }
}
