//! healthchecks.io and compatible servers: `URL/start` when a run starts,
//! `URL` when it succeeds, `URL/fail` when it fails, each with the run's id
//! (`rid`, a UUID) so the server pairs a start with its end and measures the
//! run, and the end of the summary as the body the server shows.

use crate::http::Endpoint;
use crate::{Payload, summary};
use orchestrator_config::NotifyEvent;
use sha2::{Digest, Sha256};

/// healthchecks keeps the first 100 kB of a body; the end of the summary is
/// where the failures are.
const BODY_LIMIT: usize = 10_000;

pub(crate) struct Healthchecks {
    endpoint: Endpoint,
}

impl Healthchecks {
    pub(crate) fn new(url: &str) -> Result<Healthchecks, String> {
        Ok(Healthchecks { endpoint: Endpoint::new(url, None)? })
    }

    pub(crate) async fn send(&self, event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        let suffix = match event {
            NotifyEvent::Start => "/start",
            NotifyEvent::Success => "",
            NotifyEvent::Failure => "/fail",
        };
        let body = match payload {
            Payload::Start { pipeline, .. } => format!("pipeline {pipeline}: run started"),
            Payload::End(report) => tail(&summary::body(report), BODY_LIMIT),
        };
        let rid = run_uuid(payload.run_id());
        self.endpoint.post(&format!("{suffix}?rid={rid}"), body).await
    }
}

/// healthchecks wants a UUID as `rid`: one made from the run id, so the
/// start and the end of a run carry the same.
pub(crate) fn run_uuid(run_id: &str) -> String {
    let d = Sha256::digest(run_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The last `limit` bytes of `text`, cut at a line.
fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = text[start..].find('\n').map_or(start, |i| start + i + 1);
    format!("…\n{}", &text[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_uuid_per_run() {
        let a = run_uuid("18c-1");
        assert_eq!(a, run_uuid("18c-1"));
        assert_ne!(a, run_uuid("18c-2"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn the_tail_keeps_whole_lines() {
        let text = "first line\nsecond line\nthird\n";
        assert_eq!(tail(text, 100), text);
        assert_eq!(tail(text, 10), "…\nthird\n");
    }
}
