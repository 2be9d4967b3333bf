//! ntfy (ntfy.sh or a server of one's own): the topic URL's server gets a
//! JSON message (topic, title, message, priority, tags), as its publishing
//! API takes it; failures are sent with high priority.

use crate::http::Endpoint;
use crate::{Payload, summary};
use orchestrator_config::NotifyEvent;

/// ntfy turns longer messages into attachments.
const MESSAGE_LIMIT: usize = 3_500;

pub(crate) struct Ntfy {
    /// The server: the topic URL without its last segment.
    server: Endpoint,
    topic: String,
    priority: Option<u8>,
}

impl Ntfy {
    pub(crate) fn new(url: &str, token: Option<String>, priority: Option<u8>) -> Result<Ntfy, String> {
        let trimmed = url.trim_end_matches('/');
        let (server, topic) = trimmed
            .rsplit_once('/')
            .filter(|(server, topic)| !topic.is_empty() && server.contains("://") && !server.ends_with('/'))
            .ok_or("the URL names no topic (write it as https://ntfy.sh/TOPIC)")?;
        Ok(Ntfy { server: Endpoint::new(server, token)?, topic: topic.to_string(), priority })
    }

    pub(crate) async fn send(&self, event: NotifyEvent, payload: &Payload) -> Result<(), String> {
        let (title, message) = match payload {
            Payload::Start { pipeline, .. } => (format!("{pipeline}: backup started"), "started".to_string()),
            Payload::End(report) => {
                let body = summary::body(report);
                let message = if body.len() > MESSAGE_LIMIT {
                    let mut end = MESSAGE_LIMIT;
                    while !body.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}\n…", &body[..end])
                } else {
                    body
                };
                (summary::subject(report), message)
            }
        };
        let (tag, default_priority) = match event {
            NotifyEvent::Start => ("hourglass_flowing_sand", 2),
            NotifyEvent::Success => ("white_check_mark", 3),
            NotifyEvent::Failure => ("rotating_light", 4),
        };
        let body = serde_json::json!({
            "topic": self.topic,
            "title": title,
            "message": message,
            "priority": self.priority.unwrap_or(default_priority),
            "tags": [tag],
        });
        // JSON is published to the server's root, not the topic's URL.
        self.server.post("/", body.to_string()).await
    }
}
