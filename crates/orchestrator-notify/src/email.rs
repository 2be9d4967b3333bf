//! One mail per run over SMTP (lettre): STARTTLS required, implicit TLS, or
//! a plain connection to a relay on this machine; a login when one is set.
//! The subject says how the run went; the body is the summary with the
//! error of each failed job.

use crate::{Payload, summary};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use orchestrator_config::{EmailSettings, EmailTls, NotifyEvent};
use std::time::Duration;

pub(crate) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    server: String,
}

impl Email {
    pub(crate) fn new(settings: &EmailSettings, password: Option<String>) -> Result<Email, String> {
        let server = format!("{}:{}", settings.host, settings.port);
        let tls = match settings.tls {
            EmailTls::None if !loopback(&settings.host) => {
                return Err(format!(
                    "tls = \"none\" is only allowed to a server on this machine (localhost, 127.0.0.1, ::1), not \
                     {}; use starttls or tls so the password and the report are not sent in clear",
                    settings.host
                ));
            }
            EmailTls::None => Tls::None,
            EmailTls::Starttls => Tls::Required(tls_parameters(settings)?),
            EmailTls::Tls => Tls::Wrapper(tls_parameters(settings)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(60)));
        if let Some(user) = &settings.user {
            builder = builder.credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
        }
        let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("`{a}` is not a mail address ({e})"));
        Ok(Email {
            transport: builder.build(),
            from: mailbox(&settings.from)?,
            to: settings.to.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
            server,
        })
    }

    pub(crate) async fn send(&self, _event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        let (subject, body) = match payload {
            Payload::Start { pipeline, run_id } => {
                (format!("{pipeline}: backup started"), format!("run {run_id} started\n"))
            }
            Payload::End(report) => (summary::subject(report), summary::body(report)),
        };
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| e.to_string())?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| format!("{}: {e}", self.server))
    }
}

fn tls_parameters(settings: &EmailSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read ca_file {}: {e}", ca.display()))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("ca_file {}: not a PEM certificate ({e})", ca.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| format!("TLS settings for {}: {e}", settings.host))
}

fn loopback(host: &str) -> bool {
    host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
