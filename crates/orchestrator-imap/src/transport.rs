//! The byte stream under async-imap: TCP, optionally TLS (rustls with ring),
//! with a read idle timeout and the one-shot password substitution.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use crate::config::{Security, ServerConfig};
use crate::error::{ImapError, tls_reason};

enum Inner {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Replaces a placeholder by the real password as the LOGIN command is
/// written. async-imap logs every command it sends (at trace level) and would
/// put a rejected argument into its errors; handing it a placeholder instead
/// means the password exists only here and in the TLS layer.
pub(crate) struct Substitution {
    pub(crate) placeholder: String,
    pub(crate) value: Zeroizing<Vec<u8>>,
}

/// How much written data is held before it must go out.
const WRITE_BUFFER: usize = 64 * 1024;

pub(crate) struct Stream {
    inner: Inner,
    idle_timeout: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    /// Bytes accepted from the writer but not yet passed to `inner`.
    pending: Zeroizing<Vec<u8>>,
    substitution: Option<Substitution>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Tcp(_) => "tcp",
            Inner::Tls(_) => "tls",
        };
        f.debug_struct("Stream").field("kind", &kind).finish_non_exhaustive()
    }
}

impl Stream {
    fn new(inner: Inner, idle_timeout: Duration) -> Stream {
        Stream {
            inner,
            idle_timeout,
            idle: None,
            pending: Zeroizing::new(Vec::with_capacity(WRITE_BUFFER)),
            substitution: None,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    pub(crate) fn substitute(&mut self, substitution: Substitution) {
        self.substitution = Some(substitution);
    }

    /// Drops an unused substitution, e.g. after a failed login.
    pub(crate) fn clear_substitution(&mut self) {
        self.substitution = None;
    }

    /// The plain TCP stream, for STARTTLS. Anything async-imap buffered is
    /// dropped with it, as RFC 3501 requires (no injected pre-TLS data).
    pub(crate) fn into_tcp(self) -> Option<TcpStream> {
        match self.inner {
            Inner::Tcp(tcp) => Some(tcp),
            Inner::Tls(_) => None,
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(poll_write_inner(&mut self.inner, cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

fn poll_write_inner(inner: &mut Inner, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    match inner {
        Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match polled {
            Poll::Ready(result) => {
                this.idle = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = this.idle_timeout;
                let idle = this.idle.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.idle = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer for {} s", timeout.as_secs()),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Stream {
    /// Writes are gathered until flush (async-imap flushes after every
    /// command): a command goes out as one TLS record and one segment, not
    /// the four small writes async-imap makes of it.
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.len() >= WRITE_BUFFER {
            ready!(this.poll_pending(cx))?;
        }
        if let Some(sub) = &this.substitution
            && let Some(at) = find(buf, sub.placeholder.as_bytes())
        {
            let sub = this.substitution.take().expect("checked above");
            this.pending.extend_from_slice(&buf[..at]);
            this.pending.extend_from_slice(&sub.value);
            this.pending.extend_from_slice(&buf[at + sub.placeholder.len()..]);
            return Poll::Ready(Ok(buf.len()));
        }
        let n = buf.len().min(WRITE_BUFFER.saturating_sub(this.pending.len()).max(1));
        this.pending.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Resolves the host, refuses plain IMAP unless every address is loopback
/// (before any connection is made), and connects to the first address that answers.
pub(crate) async fn connect_tcp(config: &ServerConfig) -> Result<Stream, ImapError> {
    let server = config.server();
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((config.host.as_str(), config.port)).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            return Err(ImapError::unreachable(&server, format!("the host name does not resolve ({e}); check `host`")));
        }
    };
    if addrs.is_empty() {
        return Err(ImapError::unreachable(&server, "the host name has no address; check `host`"));
    }
    if config.security == Security::Plain && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(ImapError::Config {
            server,
            reason: format!(
                "plain IMAP (no TLS) is only allowed to this machine (a loopback address), and {} is not one: \
                 the password would cross the network in the clear. Use security \"tls\" (port 993) or \
                 \"starttls\" (port 143)",
                config.host
            ),
        });
    }
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                tcp.set_nodelay(true).ok();
                return Ok(Stream::new(Inner::Tcp(tcp), config.idle_timeout));
            }
            Err(e) => last = Some(e),
        }
    }
    let err = last.expect("at least one address was tried");
    let reason = match err.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!(
                "connection refused: nothing listens on port {}; check `port` and that the server runs",
                config.port
            )
        }
        _ => format!("{err}; check `host`, `port` and the network"),
    };
    Err(ImapError::unreachable(&server, reason))
}

fn root_store(config: &ServerConfig) -> Result<rustls::RootCertStore, ImapError> {
    let server = config.server();
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| ImapError::Config {
                    server: server.clone(),
                    reason: format!("cannot read CA certificates from ca_file {}: {e}", path.display()),
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ImapError::Config {
                    server,
                    reason: format!("ca_file {} holds no usable PEM certificate", path.display()),
                });
            }
        }
        None => {
            // Unreadable entries in the system store are skipped, as every TLS client does.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    Ok(roots)
}

/// TLS over `stream` (fresh TCP for implicit TLS, or after STARTTLS).
pub(crate) async fn start_tls(config: &ServerConfig, tcp: TcpStream) -> Result<Stream, ImapError> {
    let server = config.server();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls { server: server.clone(), reason: e.to_string() })?
        .with_root_certificates(root_store(config)?)
        .with_no_client_auth();
    let name = ServerName::try_from(config.host.clone()).map_err(|_| ImapError::Config {
        server: server.clone(),
        reason: format!("{:?} is not a valid host name for TLS", config.host),
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config));
    match connector.connect(name, tcp).await {
        Ok(tls) => Ok(Stream::new(Inner::Tls(Box::new(tls)), config.idle_timeout)),
        Err(e) => {
            let reason = tls_reason(&e).unwrap_or_else(|| format!("the handshake failed: {e}"));
            Err(ImapError::Tls { server, reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_locates_the_placeholder() {
        assert_eq!(find(b"LOGIN \"u\" \"ph\"", b"ph"), Some(11));
        assert_eq!(find(b"abc", b"abcd"), None);
    }
}
