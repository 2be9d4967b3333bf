//! From a configuration to a logged-in session: TCP, TLS (implicit or
//! STARTTLS), greeting, CAPABILITY, LOGIN.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use async_imap::imap_proto::{Capability, RequestId, Response, ResponseCode, Status};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use crate::config::{Security, ServerConfig};
use crate::error::{ImapError, server_text};
use crate::transport::{self, Stream, Substitution};

pub(crate) type Session = async_imap::Session<Stream>;
type Unauthenticated = async_imap::Client<Stream>;

/// Upper-case capability names, `AUTH=PLAIN` style.
type Capabilities = Vec<String>;

fn capability_names(caps: &[Capability<'_>]) -> Capabilities {
    caps.iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
            Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
            Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect()
}

fn has(caps: &Capabilities, name: &str) -> bool {
    caps.iter().any(|c| c == name)
}

/// A session and what the client adapts to.
pub(crate) struct LoggedIn {
    pub(crate) session: Session,
    /// Literals may be sent without waiting for `+` (RFC 7888), which halves
    /// the round trips of a restore's APPENDs.
    pub(crate) literal_plus: bool,
}

pub(crate) async fn login(config: &ServerConfig) -> Result<LoggedIn, ImapError> {
    let server = config.server();
    let (client, caps) = match tokio::time::timeout(config.connect_timeout, establish(config)).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ImapError::unreachable(
                &server,
                format!(
                    "no answer within {} s; check `host` and `port`, and that no firewall drops the connection",
                    config.connect_timeout.as_secs()
                ),
            ));
        }
    };
    if has(&caps, "LOGINDISABLED") {
        let reason = if client.get_ref().is_tls() {
            "the server does not allow LOGIN (LOGINDISABLED) even over TLS; it needs a login method not supported here"
        } else {
            "the server refuses to log in without TLS (LOGINDISABLED); use security \"starttls\" or \"tls\""
        };
        return Err(ImapError::Config { server, reason: reason.to_owned() });
    }
    authenticate(config, client).await
}

/// Connected, protected as configured, greeted, capabilities known.
async fn establish(config: &ServerConfig) -> Result<(Unauthenticated, Capabilities), ImapError> {
    let server = config.server();
    let mut stream = transport::connect_tcp(config).await?;
    if config.security == Security::Tls {
        let tcp = stream.into_tcp().expect("a fresh connection is plain TCP");
        stream = transport::start_tls(config, tcp).await?;
    }
    let mut client = async_imap::Client::new(stream);
    let mut caps = read_greeting(&mut client, &server).await?;
    if config.security == Security::StartTls {
        let before = match caps.take() {
            Some(caps) => caps,
            None => query_capabilities(&mut client, &server).await?,
        };
        if !has(&before, "STARTTLS") {
            return Err(ImapError::Tls {
                server,
                reason: "the server does not offer STARTTLS on this port; use security \"tls\" (port 993)".to_owned(),
            });
        }
        client
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .map_err(|e| ImapError::from_imap(&server, "STARTTLS", e))?;
        let tcp = client.into_inner().into_tcp().expect("STARTTLS runs over plain TCP");
        client = async_imap::Client::new(transport::start_tls(config, tcp).await?);
        // Capabilities from before TLS may have been forged: ask again (RFC 3501 §6.2.1).
    }
    let caps = match caps {
        Some(caps) => caps,
        None => query_capabilities(&mut client, &server).await?,
    };
    Ok((client, caps))
}

/// The capabilities, if the greeting carried them (Dovecot's does).
async fn read_greeting(client: &mut Unauthenticated, server: &str) -> Result<Option<Capabilities>, ImapError> {
    let greeting = client
        .read_response()
        .await
        .map_err(|e| ImapError::from_io(server, &e))?
        .ok_or_else(|| ImapError::unreachable(server, "the server closed the connection before greeting"))?;
    match greeting.parsed() {
        Response::Data { status: Status::Ok, outcome } => Ok(match &outcome.code {
            Some(ResponseCode::Capabilities(caps)) => Some(capability_names(caps)),
            _ => None,
        }),
        Response::Data { status: Status::Bye, outcome } => Err(ImapError::unreachable(
            server,
            format!(
                "the server refused the connection: {}",
                outcome.information.as_deref().unwrap_or("(no reason given)")
            ),
        )),
        Response::Data { status: Status::PreAuth, .. } => {
            Err(ImapError::protocol(server, "the server pre-authenticated the connection, which is not supported"))
        }
        other => Err(ImapError::protocol(server, format!("unexpected greeting: {other:?}"))),
    }
}

/// CAPABILITY before login. async-imap only offers it after login, so the
/// command is written by hand with a tag of our own.
async fn query_capabilities(client: &mut Unauthenticated, server: &str) -> Result<Capabilities, ImapError> {
    const TAG: &str = "C0";
    let io = |e: std::io::Error| ImapError::from_io(server, &e);
    client.get_mut().write_all(format!("{TAG} CAPABILITY\r\n").as_bytes()).await.map_err(io)?;
    client.get_mut().flush().await.map_err(io)?;
    let mut caps = Vec::new();
    loop {
        let response = client
            .read_response()
            .await
            .map_err(io)?
            .ok_or_else(|| ImapError::unreachable(server, "the server closed the connection"))?;
        match response.parsed() {
            Response::Capabilities(list) => caps = capability_names(list),
            Response::Done { tag, status, outcome } if *tag == RequestId(TAG.to_owned()) => {
                if *status != Status::Ok {
                    let text = outcome.information.as_deref().unwrap_or("");
                    return Err(ImapError::protocol(server, format!("CAPABILITY was refused: {text}")));
                }
                return Ok(caps);
            }
            _ => {}
        }
    }
}

/// A placeholder no real argument contains, different on every login.
fn placeholder() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    format!("orchestrator-password-{:016x}", hasher.finish())
}

async fn authenticate(config: &ServerConfig, mut client: Unauthenticated) -> Result<LoggedIn, ImapError> {
    let server = config.server();
    let password = config.password.expose();
    if password.contains(['\r', '\n', '\0']) {
        return Err(ImapError::Config {
            server,
            reason: "the password contains a line break or NUL, which IMAP LOGIN cannot carry".to_owned(),
        });
    }
    // The placeholder goes inside async-imap's quotes, so the value is quoted the same way.
    let escaped = Zeroizing::new(password.replace('\\', "\\\\").replace('"', "\\\""));
    let placeholder = placeholder();
    client.get_mut().substitute(Substitution {
        placeholder: placeholder.clone(),
        value: Zeroizing::new(escaped.as_bytes().to_vec()),
    });
    match client.login_with_capabilities(&config.user, &placeholder).await {
        Ok((mut session, caps)) => {
            session.get_mut().clear_substitution();
            let caps = match caps {
                Some(caps) => caps.has_str("LITERAL+"),
                None => {
                    let caps =
                        session.capabilities().await.map_err(|e| ImapError::from_imap(&server, "CAPABILITY", e))?;
                    caps.has_str("LITERAL+")
                }
            };
            Ok(LoggedIn { session, literal_plus: caps })
        }
        Err((err, mut client)) => {
            client.get_mut().clear_substitution();
            use async_imap::error::Error;
            Err(match err {
                Error::No(text) => ImapError::Auth { server, user: config.user.clone(), reason: server_text(&text) },
                Error::Validate(_) => ImapError::Config {
                    server,
                    reason: "the user name contains a line break, which IMAP LOGIN cannot carry".to_owned(),
                },
                other => ImapError::from_imap(&server, "LOGIN", other),
            })
        }
    }
}
