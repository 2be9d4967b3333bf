//! A POST of the JSON run report (the shape of `run --json`, documented in
//! docs/reports.md), with a bearer token when one is set. A start is posted
//! as `{"event": "start", "pipeline": …, "run_id": …}`.

use crate::Payload;
use crate::http::Endpoint;
use orchestrator_config::NotifyEvent;

pub(crate) struct Webhook {
    endpoint: Endpoint,
}

impl Webhook {
    pub(crate) fn new(url: &str, token: Option<String>) -> Result<Webhook, String> {
        Ok(Webhook { endpoint: Endpoint::new(url, token)? })
    }

    pub(crate) async fn send(&self, event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        let mut body = match payload {
            Payload::Start { pipeline, run_id } => serde_json::json!({ "pipeline": pipeline, "run_id": run_id }),
            Payload::End(report) => serde_json::to_value(report.as_ref()).map_err(|e| e.to_string())?,
        };
        body["event"] = event.as_str().into();
        self.endpoint.post("", body.to_string()).await
    }
}
