//! TLS client configuration: system roots, a CA file, or a pinned leaf
//! certificate; rustls with the ring provider.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::HttpError;

/// How the server's certificate is trusted. With neither field set, the
/// system's trust store is used.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the server's leaf certificate (DER), hex with or without
    /// colons (`openssl x509 -noout -fingerprint -sha256` prints it). When
    /// set, the chain need not verify (a self-signed certificate is fine)
    /// but the pin must match; `ca_file` is then not used.
    pub tls_fingerprint: Option<String>,
}

/// The SHA-256 fingerprint of a DER certificate as OpenSSL prints it:
/// upper-case hex bytes joined by colons.
pub fn fingerprint_of_der(der: &[u8]) -> String {
    colon_hex(&Sha256::digest(der))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Parses a pin: 64 hex digits, colons and spaces ignored; OpenSSL's whole
/// line (`sha256 Fingerprint=AB:CD:…`) is taken too.
pub(crate) fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let text = text.rsplit_once('=').map_or(text, |(_, v)| v);
    let hex: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let why = || {
        format!(
            "tls_fingerprint {text:?} is not a SHA-256 fingerprint: write the 64 hex digits (colons allowed) \
             that `openssl x509 -noout -fingerprint -sha256` prints"
        )
    };
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(why());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| why())?;
    }
    Ok(out)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `tls`; `url` names the server in errors.
pub(crate) fn client_config(tls: &TlsConfig, url: &str) -> Result<Arc<ClientConfig>, HttpError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::config(url, format!("TLS set-up failed: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if let Some(pin) = &tls.tls_fingerprint {
        let pin = parse_fingerprint(pin).map_err(|e| HttpError::config(url, e))?;
        Arc::new(PinnedVerifier { pin, algorithms: provider.signature_verification_algorithms })
    } else {
        let roots = match &tls.ca_file {
            Some(path) => {
                let read_error = |e: &dyn fmt::Display| {
                    HttpError::config(
                        url,
                        format!(
                            "cannot read ca_file {}: {e}; it must be a PEM file of CA certificates",
                            path.display()
                        ),
                    )
                };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| read_error(&e))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| read_error(&e))?;
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(read_error(&"it holds no usable certificate"));
                }
                roots
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(HttpError::config(
                        url,
                        "the system has no CA certificates (install ca-certificates), or set ca_file or \
                         tls_fingerprint",
                    ));
                }
                roots
            }
        };
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| HttpError::config(url, format!("TLS set-up failed: {e}")))?;
        Arc::new(ChainVerifier { inner })
    };
    let mut config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} is not a valid TLS server name ({e})"))
}

/// Carried out of the handshake inside `CertificateError::Other`.
#[derive(Debug)]
struct PinMismatch {
    presented: String,
}

/// Carried out of the handshake inside `CertificateError::Other`.
#[derive(Debug)]
struct Untrusted {
    reason: &'static str,
    fingerprint: String,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "certificate does not match the pin (presented {})", self.presented)
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SHA-256 {})", self.reason, self.fingerprint)
    }
}

impl std::error::Error for PinMismatch {}
impl std::error::Error for Untrusted {}

fn other(error: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

/// The pin alone decides: the leaf's SHA-256 must match. Handshake
/// signatures are still verified against the leaf's key, so the server must
/// hold the pinned certificate's private key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = Sha256::digest(end_entity.as_ref());
        if digest.as_slice() == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(other(PinMismatch { presented: colon_hex(&digest) }))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// webpki's chain verification, with the presented certificate's
/// fingerprint added to an "unknown issuer" failure so the error can say
/// what to pin.
#[derive(Debug)]
struct ChainVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            )) => Err(other(Untrusted {
                reason: "it is not signed by a trusted CA",
                fingerprint: fingerprint_of_der(end_entity.as_ref()),
            })),
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The error for a TLS failure hidden in an I/O error, if it is one.
pub(crate) fn tls_error(url: &str, host_port: &str, err: &io::Error) -> Option<HttpError> {
    let inner = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    let tls = |reason: String| HttpError::Tls { url: url.to_owned(), reason };
    Some(match inner {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(e))) => {
            if let Some(m) = e.downcast_ref::<PinMismatch>() {
                HttpError::PinMismatch {
                    url: url.to_owned(),
                    host_port: host_port.to_owned(),
                    expected: String::new(),
                    presented: m.presented.clone(),
                }
            } else if let Some(u) = e.downcast_ref::<Untrusted>() {
                HttpError::Untrusted {
                    url: url.to_owned(),
                    host_port: host_port.to_owned(),
                    reason: u.reason.to_owned(),
                    fingerprint: u.fingerprint.clone(),
                }
            } else {
                tls(format!("the server's certificate was rejected: {e}"))
            }
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => tls("the server's certificate is not valid for this host name; use the name the certificate was \
                  issued for in the URL, or set tls_fingerprint"
            .to_owned()),
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            tls("the server's certificate has expired; renew it on the server".to_owned())
        }
        rustls::Error::InvalidCertificate(other) => tls(format!("the server's certificate was rejected: {other:?}")),
        other => tls(format!("{other}")),
    })
}

/// Fills in the expected pin of a [`HttpError::PinMismatch`] (the verifier
/// does not know how the user wrote it).
pub(crate) fn with_expected_pin(err: HttpError, tls: &TlsConfig) -> HttpError {
    match err {
        HttpError::PinMismatch { url, host_port, presented, .. } => {
            let expected = tls
                .tls_fingerprint
                .as_deref()
                .and_then(|p| parse_fingerprint(p).ok())
                .map(|p| colon_hex(&p))
                .unwrap_or_default();
            HttpError::PinMismatch { url, host_port, expected, presented }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_in_openssl_and_plain_forms() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex).unwrap(), [0xab; 32]);
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert_eq!(parse_fingerprint(&format!("sha256 Fingerprint={colons}")).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("ab:cd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert_eq!(fingerprint_of_der(b"").len(), 32 * 3 - 1);
    }
}
