//! JSON-RPC 2.0 over a [`Socket`]: ids, matching answers, error objects;
//! notifications (TrueNAS's `collection_update`) and answers to older ids are
//! skipped.

use serde_json::{Value, json};

use crate::transport::{Socket, TransportError, TransportErrorKind};

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum RpcFailure {
    /// The server's error object.
    Error {
        code: i64,
        message: String,
        data: Value,
    },
    Transport(TransportError),
}

pub(crate) struct Rpc<S: Socket> {
    socket: S,
    next_id: u64,
    url: String,
}

impl<S: Socket> Rpc<S> {
    pub(crate) fn new(socket: S, url: String) -> Rpc<S> {
        Rpc { socket, next_id: 1, url }
    }

    /// Calls `method` with `params` and returns its `result`.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcFailure> {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        self.socket.send(text).map_err(RpcFailure::Transport)?;
        self.answer(id)
    }

    /// [`Rpc::call`] with `placeholder` in `params` replaced by the API key
    /// on the way out (by the transport: the key is never here).
    pub(crate) fn call_with_key(
        &mut self,
        method: &str,
        params: Value,
        placeholder: &str,
    ) -> Result<Value, RpcFailure> {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        self.socket.send_with_key(text, placeholder).map_err(RpcFailure::Transport)?;
        self.answer(id)
    }

    fn answer(&mut self, id: u64) -> Result<Value, RpcFailure> {
        loop {
            let text = self.socket.receive().map_err(RpcFailure::Transport)?;
            let message: Value = serde_json::from_str(&text).map_err(|e| {
                RpcFailure::Transport(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("{}: the server sent a message that is not JSON ({e})", self.url),
                ))
            })?;
            let Value::Object(mut object) = message else {
                return Err(RpcFailure::Transport(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("{}: the server sent a JSON-RPC message that is not an object", self.url),
                )));
            };
            let answer_id = object.get("id").cloned();
            let is_ours = answer_id.as_ref().and_then(Value::as_u64) == Some(id);
            // An error with a null id is the server failing to read our request.
            let unreadable_request = matches!(answer_id, Some(Value::Null)) && object.contains_key("error");
            if !is_ours && !unreadable_request {
                continue;
            }
            if let Some(error) = object.remove("error").filter(|e| !e.is_null()) {
                return Err(RpcFailure::Error {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_owned(),
                    data: error.get("data").cloned().unwrap_or(Value::Null),
                });
            }
            return Ok(object.remove("result").unwrap_or(Value::Null));
        }
    }

    pub(crate) fn close(&mut self) {
        self.socket.close();
    }
}
