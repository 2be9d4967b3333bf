//! Stopping a run before its end, cooperatively.
//!
//! A job is never cut off in the middle of a plugin call: an async call into
//! wasmtime that is dropped leaves the instance unusable, and the source
//! could then not be told to release what it holds (a TrueNAS snapshot).
//! Instead the job checks its [`Stop`] between calls (each is bounded: one
//! batch of entries, one chunk of content), and on a stop it tells the
//! source `finish(cancelled)` and abandons the sink's set, which never gets
//! its manifest and is removed by the next run.
//!
//! Stops come from SIGINT/SIGTERM ([`on_signals`]; a second signal quits at
//! once), the job's `limits.timeout`, and a lost run lock.

use std::time::Duration;
use tokio::sync::watch;

/// Why a run or job is being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A signal from outside (Ctrl-C, `docker stop`, a Kubernetes eviction).
    Signal { name: &'static str, number: i32 },
    /// The job ran past `limits.timeout`.
    TimeLimit(Duration),
    /// The run lock is no longer this run's.
    LockLost(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Signal { name, .. } => write!(f, "cancelled by {name}"),
            StopReason::TimeLimit(t) => {
                write!(f, "the job did not finish within its time limit of {}s (`limits.timeout`)", t.as_secs())
            }
            StopReason::LockLost(why) => f.write_str(why),
        }
    }
}

/// A stop that can be asked for once and watched by many; cloning shares it.
#[derive(Debug, Clone)]
pub struct Stop {
    tx: watch::Sender<Option<StopReason>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    /// A stop nobody has asked for yet.
    pub fn new() -> Stop {
        Stop { tx: watch::Sender::new(None) }
    }

    /// Ask for the stop; the first reason given is the one kept.
    pub fn request(&self, reason: StopReason) {
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    /// The reason, if a stop was asked for.
    pub fn reason(&self) -> Option<StopReason> {
        self.tx.borrow().clone()
    }

    /// `Err(reason)` once a stop was asked for: call between plugin calls.
    pub fn check(&self) -> Result<(), StopReason> {
        self.reason().map_or(Ok(()), Err)
    }

    /// Resolves when a stop is asked for.
    pub async fn requested(&self) -> StopReason {
        let mut rx = self.tx.subscribe();
        let reason = rx.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
        match reason {
            Some(reason) => reason,
            // Unreachable while `self` holds the sender.
            None => std::future::pending().await,
        }
    }

    /// Ask to stop with [`StopReason::TimeLimit`] once `limit` has passed
    /// (no task without a limit); abort the task when the work ends first.
    pub fn after(&self, limit: Option<Duration>) -> Option<tokio::task::JoinHandle<()>> {
        let (limit, stop) = (limit?, self.clone());
        Some(tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stop.request(StopReason::TimeLimit(limit));
        }))
    }

    /// A stop of its own that also follows this one (a job's, under the run's).
    pub fn child(&self) -> (Stop, tokio::task::JoinHandle<()>) {
        let child = Stop::new();
        let (parent, relay) = (self.clone(), child.clone());
        let task = tokio::spawn(async move { relay.request(parent.requested().await) });
        (child, task)
    }
}

/// Stop `stop` on the first SIGINT or SIGTERM; on the second, call `again`
/// with the signal's name and number (the CLI quits at once there; the core
/// never exits the process itself).
pub fn on_signals(
    stop: Stop,
    again: impl Fn(&'static str, i32) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let mut received = 0;
        loop {
            let (name, number) = tokio::select! {
                _ = interrupt.recv() => ("SIGINT", 2),
                _ = terminate.recv() => ("SIGTERM", 15),
            };
            received += 1;
            if received > 1 {
                again(name, number);
                continue;
            }
            tracing::warn!(
                "{name} received: stopping after the current step, so sources release what they hold \
                 (send it again to quit at once)"
            );
            stop.request(StopReason::Signal { name, number });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins_and_children_follow_their_parent() {
        let run = Stop::new();
        let (job, relay) = run.child();
        assert_eq!(job.check(), Ok(()));
        job.request(StopReason::TimeLimit(Duration::from_secs(5)));
        run.request(StopReason::Signal { name: "SIGTERM", number: 15 });
        assert_eq!(job.requested().await, StopReason::TimeLimit(Duration::from_secs(5)));
        relay.await.unwrap();
        assert_eq!(job.check(), Err(StopReason::TimeLimit(Duration::from_secs(5))));

        let (other, relay) = run.child();
        relay.await.unwrap();
        assert_eq!(other.reason(), Some(StopReason::Signal { name: "SIGTERM", number: 15 }));
    }
}
