//! TCP, handshake, host key, login: in that order, so no credential is ever
//! sent to a server whose key has not been checked.

use crate::config::{Auth, SftpConfig, Target};
use crate::error::{HostKeyCheck, SftpError};
use crate::known_hosts::{self, KnownHosts, Verdict};
use ssh2::{MethodType, Session};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// libssh2's error for a private key it cannot read or decrypt.
const LIBSSH2_ERROR_FILE: i32 = -16;

/// An authenticated session with the server's key checked.
pub(crate) fn session(config: &SftpConfig) -> Result<Session, SftpError> {
    let target = config.target();
    let known = KnownHosts::load(&config.known_hosts).map_err(|e| SftpError::KnownHostsUnreadable {
        target: target.clone(),
        path: config.known_hosts.clone(),
        reason: e.to_string(),
    })?;
    let tcp = tcp_connect(&target, config.timeout)?;
    let handshake_failed = |e: ssh2::Error| SftpError::Handshake { target: target.clone(), reason: e.to_string() };
    let mut session = Session::new().map_err(handshake_failed)?;
    session.set_timeout(u32::try_from(config.timeout.as_millis()).unwrap_or(u32::MAX));
    prefer_known_key_types(&session, &known.key_types_for(&config.host, config.port));
    session.set_tcp_stream(tcp);
    session.handshake().map_err(handshake_failed)?;
    check_host_key(&session, &known, config, &target)?;
    authenticate(&session, config, &target)?;
    Ok(session)
}

fn tcp_connect(target: &Target, timeout: Duration) -> Result<TcpStream, SftpError> {
    let unreachable = |reason: String| SftpError::Unreachable { target: target.clone(), reason };
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve host name `{}`: {e}", target.host)))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        let attempt =
            if timeout.is_zero() { TcpStream::connect(addr) } else { TcpStream::connect_timeout(addr, timeout) };
        match attempt {
            Ok(tcp) => {
                // SFTP sends many small requests; Nagle would hold each back.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(unreachable(last.unwrap_or_else(|| format!("`{}` resolves to no address", target.host))))
}

/// Put the host key algorithms for key types `known_hosts` holds first, so a
/// server with several keys shows the one we can check. Certificate
/// algorithms are left out: we compare plain keys.
fn prefer_known_key_types(session: &Session, known_types: &[String]) {
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else { return };
    let plain: Vec<&str> = supported.into_iter().filter(|a| !a.contains("-cert-")).collect();
    let key_type_of = |alg: &str| if alg.starts_with("rsa-sha2-") { "ssh-rsa".to_string() } else { alg.to_string() };
    let (mut first, rest): (Vec<&str>, Vec<&str>) = plain.iter().partition(|a| known_types.contains(&key_type_of(a)));
    first.extend(rest);
    // On failure libssh2 keeps its default order, which is still checked.
    let _ = session.method_pref(MethodType::HostKey, &first.join(","));
}

fn check_host_key(
    session: &Session,
    known: &KnownHosts,
    config: &SftpConfig,
    target: &Target,
) -> Result<(), SftpError> {
    let Some((key, _)) = session.host_key() else {
        return Err(SftpError::Handshake { target: target.clone(), reason: "the server sent no host key".into() });
    };
    let check = Box::new(HostKeyCheck {
        key_type: known_hosts::key_type(key).unwrap_or_else(|| "unknown-type".into()),
        fingerprint: known_hosts::fingerprint(key),
        known_hosts: config.known_hosts.clone(),
    });
    let target = target.clone();
    match known.check(&config.host, config.port, key) {
        Verdict::Known => Ok(()),
        Verdict::Unknown => Err(SftpError::UnknownHostKey { target, check }),
        Verdict::Changed { lines, known_types } => Err(SftpError::ChangedHostKey { target, check, lines, known_types }),
        Verdict::Revoked { line } => Err(SftpError::RevokedHostKey { target, check, line }),
    }
}

fn authenticate(session: &Session, config: &SftpConfig, target: &Target) -> Result<(), SftpError> {
    let target = target.clone();
    match &config.auth {
        Auth::KeyFile { path, passphrase } => {
            // libssh2 says only "unable to extract public key" for a missing
            // file; opening it first gives the OS's reason.
            std::fs::File::open(path).map_err(|e| SftpError::KeyFileUnreadable {
                target: target.clone(),
                key: path.clone(),
                reason: e.to_string(),
            })?;
            let passphrase = passphrase.as_ref().map(|p| p.expose());
            match session.userauth_pubkey_file(&config.user, None, path, passphrase) {
                Ok(()) if session.authenticated() => Ok(()),
                Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_FILE) => {
                    Err(SftpError::KeyUnusable { target, key: path.clone() })
                }
                Err(e) if !is_rejection(&e) => Err(lost(target, e)),
                _ => Err(SftpError::KeyRejected { target, key: path.clone() }),
            }
        }
        Auth::Password(password) => match session.userauth_password(&config.user, password.expose()) {
            Ok(()) if session.authenticated() => Ok(()),
            Err(e) if !is_rejection(&e) => Err(lost(target, e)),
            _ => Err(SftpError::PasswordRejected { target }),
        },
    }
}

/// Whatever fails during login, short of the connection breaking, is the
/// server saying no (libssh2 has several codes for it).
fn is_rejection(e: &ssh2::Error) -> bool {
    !matches!(e.code(), ssh2::ErrorCode::Session(code) if crate::error::CONNECTION_LOST.contains(&code))
}

fn lost(target: Target, e: ssh2::Error) -> SftpError {
    SftpError::ConnectionLost { target, op: "logging in", path: Default::default(), reason: crate::error::describe(&e) }
}
