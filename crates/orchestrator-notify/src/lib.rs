//! Telling people and monitors how a run went: the `[notify.NAME]` tables
//! of a pipeline, delivered at a run's start and end.
//!
//! - [`Notifiers::prepare`] resolves each notifier's secrets and checks what
//!   can be checked without sending (URLs, TLS settings, the program).
//!   One that is not ready fails its deliveries, never the backup.
//! - [`Notifiers::started`] and [`Notifiers::finished`] deliver to every
//!   notifier whose `on` and `sources` match, all at once, each bounded by
//!   its `timeout`, and return a [`NotificationReport`] per delivery.
//!
//! **A notification never fails a backup**: a receiver that is down, slow
//! or answers an error is a report with an `error`, logged as a warning.
//! Secret values (a ping URL's path, a token, a password) are cut out of
//! every message, and URLs are shown by their origin only.

mod command;
mod email;
mod healthchecks;
mod http;
mod ntfy;
mod summary;
mod webhook;

pub use summary::{body, subject};

use orchestrator_config::{Notifier, NotifierKind, NotifyEvent, Pipeline, Setting};
use orchestrator_core::Environment;
use orchestrator_core::report::{NotificationReport, RunReport};
use std::sync::Arc;

/// A pipeline's notifiers, ready to deliver.
#[derive(Default)]
pub struct Notifiers {
    senders: Vec<Arc<Sender>>,
}

/// One notifier with its secrets resolved.
struct Sender {
    notifier: Notifier,
    /// Or why it cannot deliver.
    target: Result<Target, String>,
    /// Values cut out of every error message.
    secrets: Vec<String>,
}

enum Target {
    Healthchecks(healthchecks::Healthchecks),
    Webhook(webhook::Webhook),
    Ntfy(ntfy::Ntfy),
    Email(email::Email),
    Command(command::Command),
}

/// What a delivery is about.
#[derive(Clone, Copy)]
enum Moment<'a> {
    Start { pipeline: &'a str, run_id: &'a str },
    End(&'a RunReport),
}

impl Notifiers {
    /// Resolve the secrets of every `[notify.NAME]` table. A notifier that
    /// cannot be made ready (a variable not set, a URL refused) does not
    /// stop the backup: each delivery to it is reported failed with why,
    /// and [`Notifiers::problems`] lists them for `validate`.
    pub fn prepare(pipeline: &Pipeline, env: &Environment) -> Notifiers {
        let senders = pipeline
            .notify
            .iter()
            .map(|notifier| {
                Arc::new(Sender::new(notifier, env).unwrap_or_else(|e| {
                    let place =
                        format!("{}:{}: notify.{}", pipeline.file.display(), notifier.header_line, notifier.name);
                    Sender { notifier: notifier.clone(), target: Err(format!("{place}: {e}")), secrets: Vec::new() }
                }))
            })
            .collect();
        Notifiers { senders }
    }

    /// Why notifiers cannot deliver, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        self.senders.iter().filter_map(|s| s.target.as_ref().err().cloned()).collect()
    }

    /// No notifier at all.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// A run of `sources` starts.
    pub async fn started(&self, pipeline: &str, run_id: &str, sources: &[String]) -> Vec<NotificationReport> {
        self.deliver(Moment::Start { pipeline, run_id }, sources).await
    }

    /// A run of `sources` ended with `report` (which has no jobs when it
    /// could not start).
    pub async fn finished(&self, report: &RunReport, sources: &[String]) -> Vec<NotificationReport> {
        self.deliver(Moment::End(report), sources).await
    }

    async fn deliver(&self, moment: Moment<'_>, sources: &[String]) -> Vec<NotificationReport> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, sender) in self.senders.iter().enumerate() {
            let watched = |s: &String| sender.notifier.sources.is_empty() || sender.notifier.sources.contains(s);
            if !sources.iter().any(watched) {
                continue;
            }
            // Each notifier hears only about the sources it watches.
            let (event, payload) = match moment {
                Moment::Start { pipeline, run_id } => {
                    (NotifyEvent::Start, Payload::Start { pipeline: pipeline.into(), run_id: run_id.into() })
                }
                Moment::End(report) => {
                    let mut own = report.clone();
                    own.jobs.retain(|j| watched(&j.source));
                    own.ok = own.error.is_none() && own.failed() == 0;
                    let event = if own.ok { NotifyEvent::Success } else { NotifyEvent::Failure };
                    (event, Payload::End(Box::new(own)))
                }
            };
            if !sender.notifier.on.contains(&event) {
                continue;
            }
            let sender = sender.clone();
            tasks.spawn(async move {
                let error = match tokio::time::timeout(sender.notifier.timeout, sender.send(event, &payload)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(sender.redact(&e)),
                    Err(_) => Some(format!("no answer within {:?}", sender.notifier.timeout)),
                };
                let report = NotificationReport {
                    notifier: sender.notifier.name.clone(),
                    event: event.as_str(),
                    error: error.map(|e| format!("{} ({}): {e}", sender.notifier.name, sender.notifier.kind.word())),
                };
                (index, report)
            });
        }
        let mut out = tasks.join_all().await;
        out.sort_by_key(|(index, _)| *index);
        let out: Vec<_> = out.into_iter().map(|(_, r)| r).collect();
        for r in &out {
            match &r.error {
                Some(e) => tracing::warn!(notifier = %r.notifier, event = r.event, "notification not delivered: {e}"),
                None => tracing::info!(notifier = %r.notifier, event = r.event, "notification delivered"),
            }
        }
        out
    }
}

/// What one notifier is sent.
enum Payload {
    Start { pipeline: String, run_id: String },
    End(Box<RunReport>),
}

impl Payload {
    fn run_id(&self) -> &str {
        match self {
            Payload::Start { run_id, .. } => run_id,
            Payload::End(r) => &r.run_id,
        }
    }
}

impl Sender {
    fn new(notifier: &Notifier, env: &Environment) -> Result<Sender, String> {
        let mut secrets = Vec::new();
        let mut value = |setting: &Setting| -> Result<String, String> {
            match setting {
                Setting::Plain(v) => Ok(v.clone()),
                Setting::Secret(source) => {
                    let v = env.secret(source)?;
                    secrets.push(v.clone());
                    Ok(v)
                }
            }
        };
        let target = match &notifier.kind {
            NotifierKind::Healthchecks { url } => Target::Healthchecks(healthchecks::Healthchecks::new(&value(url)?)?),
            NotifierKind::Webhook { url, token } => {
                let token = token.as_ref().map(&mut value).transpose()?;
                Target::Webhook(webhook::Webhook::new(&value(url)?, token)?)
            }
            NotifierKind::Ntfy { url, token, priority } => {
                let token = token.as_ref().map(&mut value).transpose()?;
                Target::Ntfy(ntfy::Ntfy::new(&value(url)?, token, *priority)?)
            }
            NotifierKind::Email(settings) => {
                let password = settings.password.as_ref().map(&mut value).transpose()?;
                Target::Email(email::Email::new(settings, password)?)
            }
            NotifierKind::Command { program, args } => Target::Command(command::Command::new(program, args)?),
        };
        // A secret URL's path (a healthchecks UUID, an ntfy topic) may show
        // on its own in a message.
        secrets.extend(http::secret_paths(&secrets));
        Ok(Sender { notifier: notifier.clone(), target: Ok(target), secrets })
    }

    async fn send(&self, event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        match &self.target {
            Ok(Target::Healthchecks(h)) => h.send(event, payload).await,
            Ok(Target::Webhook(w)) => w.send(event, payload).await,
            Ok(Target::Ntfy(n)) => n.send(event, payload).await,
            Ok(Target::Email(m)) => m.send(event, payload).await,
            Ok(Target::Command(c)) => c.send(event, payload).await,
            Err(problem) => Err(problem.clone()),
        }
    }

    fn redact(&self, message: &str) -> String {
        orchestrator_config::redact(message, self.secrets.iter().map(String::as_str))
    }
}
