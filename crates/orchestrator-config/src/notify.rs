//! `[notify.NAME]` tables: who hears how a run went. The values that would
//! let someone else post as the pipeline (a ping URL, a token, a password)
//! may be secret references; they stay references here.

use crate::SecretSource;
use std::path::PathBuf;
use std::time::Duration;

/// A value written inline or referenced as a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Written in the pipeline file.
    Plain(String),
    /// `{ env = "NAME" }` or `{ file = "path" }`.
    Secret(SecretSource),
}

/// When a notifier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotifyEvent {
    /// A run starts (healthchecks measure the run's duration from it).
    Start,
    /// Every job of the run succeeded.
    Success,
    /// A job failed or was stopped.
    Failure,
}

impl NotifyEvent {
    /// The word the pipeline file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Start => "start",
            NotifyEvent::Success => "success",
            NotifyEvent::Failure => "failure",
        }
    }
}

/// One `[notify.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// The table's name.
    pub name: String,
    /// The events it is sent on (`on`; when absent, every event for
    /// `healthchecks`, `["failure"]` for the others).
    pub on: Vec<NotifyEvent>,
    /// Only runs that back up one of these sources (every source when empty);
    /// what it is sent holds only their jobs.
    pub sources: Vec<String>,
    /// Longest one delivery may take before it is given up.
    pub timeout: Duration,
    /// Where and how it is delivered.
    pub kind: NotifierKind,
    /// Line of the table's header, for errors about it.
    pub header_line: usize,
}

/// The kinds of notifier and their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierKind {
    /// healthchecks.io and compatible (`/start`, success, `/fail` pings).
    Healthchecks {
        /// The check's ping URL.
        url: Setting,
    },
    /// A POST of the JSON run report.
    Webhook {
        /// Where to POST.
        url: Setting,
        /// Sent as `Authorization: Bearer …`.
        token: Option<Setting>,
    },
    /// A message to an ntfy topic.
    Ntfy {
        /// The topic's URL (`https://ntfy.sh/my-backups`).
        url: Setting,
        /// An access token for protected topics.
        token: Option<Setting>,
        /// 1 (min) to 5 (max); failures default to 4 (high).
        priority: Option<u8>,
    },
    /// One mail per run over SMTP.
    Email(EmailSettings),
    /// A program run with the JSON report on its stdin.
    Command {
        /// An absolute path: the one program this notifier may run.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

impl NotifierKind {
    /// The `kind` word of the table.
    pub fn word(&self) -> &'static str {
        match self {
            NotifierKind::Healthchecks { .. } => "healthchecks",
            NotifierKind::Webhook { .. } => "webhook",
            NotifierKind::Ntfy { .. } => "ntfy",
            NotifierKind::Email(_) => "email",
            NotifierKind::Command { .. } => "command",
        }
    }
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS (port 587), required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only to a server on the same machine (a local relay).
    None,
}

/// An `email` notifier's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// The SMTP server's name.
    pub host: String,
    /// Its port (587 for STARTTLS, 465 for TLS, 25 for none when absent).
    pub port: u16,
    /// STARTTLS, TLS or none.
    pub tls: EmailTls,
    /// Login name, when the server wants one.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<Setting>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A CA certificate (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}
