//! The connection under HTTP and WebSocket: resolve, refuse plain TCP to a
//! non-loopback address, connect with a timeout, TLS if the base is https.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::HttpClient;
use crate::error::HttpError;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a connection to the client's server; `url` (the resolved request
/// URL) names it in errors.
pub(crate) async fn connect(client: &HttpClient, url: &str) -> Result<Stream, HttpError> {
    let base = client.base();
    let timeout = client.timeouts().connect;
    let timed_out = || HttpError::Timeout { url: url.to_owned(), during: "connecting", after: timeout };
    let host = base.host_name();
    let addrs: Vec<SocketAddr> = match base.ip() {
        Some(ip) => vec![SocketAddr::new(ip, base.port)],
        None => match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), base.port))).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => {
                return Err(HttpError::unreachable(
                    url,
                    format!("the host name {host:?} does not resolve ({e}); check the URL"),
                ));
            }
            Ok(Ok(addrs)) => addrs.collect(),
        },
    };
    if addrs.is_empty() {
        return Err(HttpError::unreachable(url, format!("the host name {host:?} has no address; check the URL")));
    }
    if !base.tls && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(base.plain_not_loopback());
    }
    let host_port = base.host_port();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last: Option<HttpError> = None;
    let mut tcp = None;
    for addr in &addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out()),
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(e)) => last = Some(HttpError::from_io(url, &host_port, &e)),
        }
    }
    let Some(tcp) = tcp else {
        return Err(last.unwrap_or_else(|| HttpError::unreachable(url, "no address answered")));
    };
    let _ = tcp.set_nodelay(true);
    let Some(config) = client.tls_config() else {
        return Ok(Stream::Plain(tcp));
    };
    let name = crate::tls::server_name(&host).map_err(|e| HttpError::config(url, e))?;
    let handshake = TlsConnector::from(config.clone()).connect(name, tcp);
    match tokio::time::timeout_at(deadline, handshake).await {
        Err(_) => Err(HttpError::Timeout { url: url.to_owned(), during: "setting up TLS", after: timeout }),
        Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(crate::tls::with_expected_pin(HttpError::from_io(url, &host_port, &e), client.tls())),
    }
}
