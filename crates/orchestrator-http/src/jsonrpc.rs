//! [`JsonRpc`]: JSON-RPC 2.0 calls over a [`WsClient`].

use serde_json::{Value, json};

use crate::error::HttpError;
use crate::ws::WsClient;

/// JSON-RPC 2.0 over one WebSocket. Calls are made one at a time; each gets
/// a fresh id, and messages that are not its answer (notifications such as
/// TrueNAS's `collection_update`, answers to older ids) are skipped.
#[derive(Debug)]
pub struct JsonRpc {
    ws: WsClient,
    next_id: u64,
}

impl JsonRpc {
    pub fn new(ws: WsClient) -> JsonRpc {
        JsonRpc { ws, next_id: 1 }
    }

    pub fn url(&self) -> &str {
        self.ws.url()
    }

    /// Calls `method` with `params` (a JSON array, or an object for named
    /// parameters) and returns its `result`. An error object is
    /// [`HttpError::Rpc`] with the code, message and data; the whole call
    /// is bounded by the client's request timeout.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, HttpError> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await?;
        let after = self.ws.timeout();
        let url = self.ws.url().to_owned();
        match tokio::time::timeout(after, self.answer(id, method)).await {
            Err(_) => Err(HttpError::Timeout { url, during: "waiting for the answer to a call", after }),
            Ok(result) => result,
        }
    }

    async fn answer(&mut self, id: u64, method: &str) -> Result<Value, HttpError> {
        loop {
            let mut message = self.ws.next_json().await?;
            let Some(object) = message.as_object_mut() else {
                return Err(HttpError::protocol(
                    self.ws.url(),
                    "the server sent a JSON-RPC message that is not an object",
                ));
            };
            let answer_id = object.get("id").cloned();
            let is_ours = answer_id.as_ref().and_then(Value::as_u64) == Some(id);
            // An error with a null id is the server failing to read our request.
            let unreadable_request = matches!(answer_id, Some(Value::Null)) && object.contains_key("error");
            if !is_ours && !unreadable_request {
                continue; // a notification, or the answer to an abandoned call
            }
            if let Some(error) = object.remove("error").filter(|e| !e.is_null()) {
                return Err(HttpError::Rpc {
                    url: self.ws.url().to_owned(),
                    method: method.to_owned(),
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_owned(),
                    data: error.get("data").cloned().unwrap_or(Value::Null),
                });
            }
            return Ok(object.remove("result").unwrap_or(Value::Null));
        }
    }

    pub async fn close(self) {
        self.ws.close().await;
    }
}
