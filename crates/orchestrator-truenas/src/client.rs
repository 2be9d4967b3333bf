//! [`TrueNas`]: API detection, login and the dataset and snapshot operations.

use std::cell::RefCell;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::children::{ChildDataset, parse_children};
use crate::error::TrueNasError;
use crate::rpc::{Rpc, RpcFailure};
use crate::transport::{Transport, TransportError, TransportErrorKind};
use crate::version::Version;

/// What stands for the API key in the JSON-RPC login; the transport puts the
/// key in its place on the way out.
pub const KEY_PLACEHOLDER: &str = "@@ORCHESTRATOR_TRUENAS_API_KEY@@";

/// The API generation in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// JSON-RPC 2.0 over WebSocket at `/api/current` (TrueNAS 25.04 and later).
    JsonRpc,
    /// REST v2.0 under `/api/v2.0` (TrueNAS 24.10).
    Rest,
}

/// Which snapshot service the NAS offers publicly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMethods {
    /// `zfs.snapshot.*` (REST `/api/v2.0/zfs/snapshot`): before 25.10.
    ZfsSnapshot,
    /// `pool.snapshot.*` (REST `/api/v2.0/pool/snapshot`): 25.10 and later.
    PoolSnapshot,
}

impl SnapshotMethods {
    fn for_version(version: &Version) -> SnapshotMethods {
        if version.at_least(25, 10) { SnapshotMethods::PoolSnapshot } else { SnapshotMethods::ZfsSnapshot }
    }

    /// `zfs.snapshot` or `pool.snapshot`.
    pub fn namespace(self) -> &'static str {
        match self {
            SnapshotMethods::ZfsSnapshot => "zfs.snapshot",
            SnapshotMethods::PoolSnapshot => "pool.snapshot",
        }
    }

    /// The JSON-RPC method for `verb` (`create`, `delete`, `query`).
    pub fn method(self, verb: &str) -> String {
        format!("{}.{verb}", self.namespace())
    }

    fn rest_path(self) -> &'static str {
        match self {
            SnapshotMethods::ZfsSnapshot => "/api/v2.0/zfs/snapshot",
            SnapshotMethods::PoolSnapshot => "/api/v2.0/pool/snapshot",
        }
    }
}

/// A snapshot as TrueNAS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `tank/data@name`.
    pub id: String,
    pub dataset: String,
    /// The part after `@`.
    pub name: String,
    /// The transaction group it was taken in: orders snapshots by age.
    pub createtxg: Option<u64>,
}

enum Wire<S: crate::transport::Socket> {
    Rpc(RefCell<Rpc<S>>),
    Rest,
}

/// A logged-in connection to one TrueNAS, over any [`Transport`].
pub struct TrueNas<T: Transport> {
    http: T,
    url: String,
    wire: Wire<T::Socket>,
    version: Version,
    methods: SnapshotMethods,
}

impl<T: Transport> std::fmt::Debug for TrueNas<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrueNas")
            .field("url", &self.url)
            .field("api", &self.api())
            .field("version", &self.version.text)
            .field("snapshot_methods", &self.methods)
            .finish()
    }
}

/// Dataset and snapshot names in REST paths: everything but `-_.~` and
/// alphanumerics is encoded, `/` and `@` included.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// What the NAS said when it refused a call: middleware's `CallError`
/// (`errname`, `reason`) or REST's `{message, errno}`.
struct Refusal {
    errname: String,
    reason: String,
}

enum Failure {
    Refused(Refusal),
    Http(TransportError),
}

fn errname_of(errno: i64) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        13 => "EACCES",
        14 => "EFAULT",
        17 => "EEXIST",
        22 => "EINVAL",
        _ => "",
    }
}

impl<T: Transport> TrueNas<T> {
    /// Finds the API generation over `http` (which holds the API key), logs
    /// in and reads the version (see the crate docs). `username` is the API
    /// key's user: with it, JSON-RPC logins use `auth.login_ex`
    /// (`API_KEY_PLAIN`), without it `auth.login_with_api_key`.
    pub fn connect(http: T, username: Option<&str>) -> Result<TrueNas<T>, TrueNasError> {
        let url = http.base_url();
        let connection = |source: TransportError| match source.kind {
            TransportErrorKind::Auth => TrueNasError::WrongApiKey { url: url.clone(), reason: source.message },
            _ => TrueNasError::Connection { url: url.clone(), dataset: String::new(), source },
        };
        match http.connect("/api/current") {
            Ok(socket) => {
                let mut rpc = Rpc::new(socket, url.clone());
                login(&mut rpc, username, &url).map_err(|e| match e {
                    LoginError::Refused(reason) => TrueNasError::WrongApiKey { url: url.clone(), reason },
                    LoginError::Http(e) => connection(e),
                })?;
                let text = rpc.call("system.version", json!([])).map_err(|f| connection(rpc_transport(&url, f)))?;
                let version = parse_version(&url, &text)?;
                let methods = SnapshotMethods::for_version(&version);
                Ok(TrueNas { http, url, wire: Wire::Rpc(RefCell::new(rpc)), version, methods })
            }
            Err(e) if e.kind == TransportErrorKind::NotFound => {
                // No JSON-RPC route (404, or a front end answering the upgrade
                // with a page): TrueNAS 24.10 (or older), REST only.
                let text = match http.request("GET", "/api/v2.0/system/version", None) {
                    Ok((200..=299, text)) => parse_body(&text),
                    Ok((401 | 403, body)) => {
                        return Err(TrueNasError::WrongApiKey { url, reason: body_message(&parse_body(&body)) });
                    }
                    Ok((404, _)) => {
                        return Err(TrueNasError::Protocol {
                            url,
                            dataset: String::new(),
                            reason: "neither /api/current (JSON-RPC) nor /api/v2.0 (REST) exists: is this a \
                                     TrueNAS (24.10 or later), and is the URL its web UI's address?"
                                .to_owned(),
                        });
                    }
                    Ok((status, body)) => {
                        return Err(TrueNasError::Protocol {
                            url,
                            dataset: String::new(),
                            reason: format!("GET /api/v2.0/system/version answered HTTP {status}: {body}"),
                        });
                    }
                    Err(e) => return Err(connection(e)),
                };
                let version = parse_version(&url, &text)?;
                let methods = SnapshotMethods::for_version(&version);
                Ok(TrueNas { http, url, wire: Wire::Rest, version, methods })
            }
            Err(e) => Err(connection(e)),
        }
    }

    /// The NAS's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn api(&self) -> Api {
        match self.wire {
            Wire::Rpc(_) => Api::JsonRpc,
            Wire::Rest => Api::Rest,
        }
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    pub fn snapshot_methods(&self) -> SnapshotMethods {
        self.methods
    }

    /// Where `dataset` is mounted on the NAS (`/mnt/tank/data`).
    pub fn dataset_mountpoint(&self, dataset: &str) -> Result<String, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        let entry = match &self.wire {
            Wire::Rpc(_) => {
                let options = json!({"extra": {"retrieve_children": false, "properties": ["mountpoint"]}});
                let found = self
                    .rpc("pool.dataset.query", json!([[["id", "=", dataset]], options]))
                    .map_err(|f| self.dataset_failure(dataset, "pool.dataset.query", f))?;
                match found.as_array().and_then(|a| a.first()) {
                    Some(entry) => entry.clone(),
                    None => return Err(self.no_dataset(dataset)),
                }
            }
            Wire::Rest => {
                // Query options go as `extra.*` parameters (JSON values), as middleware's REST layer reads them.
                let path = format!(
                    "/api/v2.0/pool/dataset/id/{}?extra.retrieve_children=false&extra.properties={}",
                    encode(dataset),
                    encode(r#"["mountpoint"]"#)
                );
                self.rest("GET", &path, None).map_err(|f| self.dataset_failure(dataset, "reading the dataset", f))?
            }
        };
        match entry.get("mountpoint") {
            Some(Value::String(mountpoint)) if mountpoint.starts_with('/') => Ok(mountpoint.clone()),
            Some(Value::String(other)) => Err(TrueNasError::NotMounted {
                url: self.url.clone(),
                dataset: dataset.to_owned(),
                mountpoint: other.clone(),
            }),
            Some(Value::Null) | None => Err(TrueNasError::NotMounted {
                url: self.url.clone(),
                dataset: dataset.to_owned(),
                mountpoint: "none".to_owned(),
            }),
            Some(other) => Err(self.protocol(dataset, format!("the dataset's mountpoint is not a string: {other}"))),
        }
    }

    /// The descendants of `dataset` (children, grandchildren, …) and where
    /// each is mounted, sorted by name: what a recursive snapshot covers
    /// besides the dataset itself. `pool.dataset.query` with the filter
    /// `id ^ "<dataset>/"`, flat, only the mount properties (REST: the same
    /// filter as `id__^=` and `extra.*` parameters, as middleware's REST
    /// layer reads them).
    pub fn child_datasets(&self, dataset: &str) -> Result<Vec<ChildDataset>, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        let prefix = format!("{dataset}/");
        let properties = json!(["mountpoint", "mounted"]);
        let answer = match &self.wire {
            Wire::Rpc(_) => {
                let options = json!({"extra": {"flat": true, "retrieve_children": true, "properties": properties}});
                self.rpc("pool.dataset.query", json!([[["id", "^", prefix]], options]))
            }
            Wire::Rest => {
                let path = format!(
                    "/api/v2.0/pool/dataset?{}={}&extra.flat=true&extra.retrieve_children=true&extra.properties={}",
                    encode("id__^"),
                    encode(&prefix),
                    encode(&properties.to_string())
                );
                self.rest("GET", &path, None)
            }
        };
        let answer = answer.map_err(|f| self.dataset_failure(dataset, "listing the child datasets", f))?;
        parse_children(dataset, &answer).map_err(|reason| self.protocol(dataset, reason))
    }

    /// Takes snapshot `dataset@name` (with its child datasets if `recursive`).
    pub fn create_snapshot(&self, dataset: &str, name: &str, recursive: bool) -> Result<Snapshot, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        check_snapshot_name(&self.url, dataset, name)?;
        let id = format!("{dataset}@{name}");
        let payload = json!({"dataset": dataset, "name": name, "recursive": recursive});
        let created = match &self.wire {
            Wire::Rpc(_) => self.rpc(&self.methods.method("create"), json!([payload])),
            Wire::Rest => self.rest("POST", self.methods.rest_path(), Some(&payload)),
        };
        let entry = created.map_err(|f| match f {
            Failure::Refused(r) if r.errname == "ENOENT" || r.reason.contains("does not exist") => {
                self.no_dataset(dataset)
            }
            Failure::Refused(r) if matches!(r.errname.as_str(), "EACCES" | "EPERM") => {
                self.not_allowed(dataset, "creating a snapshot", r.reason)
            }
            Failure::Refused(r) => TrueNasError::SnapshotRefused {
                url: self.url.clone(),
                dataset: dataset.to_owned(),
                id: id.clone(),
                action: "create",
                reason: r.reason,
            },
            Failure::Http(e) => self.http_failure(dataset, e),
        })?;
        Ok(parse_snapshot(&entry).unwrap_or(Snapshot {
            id: id.clone(),
            dataset: dataset.to_owned(),
            name: name.to_owned(),
            createtxg: None,
        }))
    }

    /// Deletes snapshot `id` (`tank/data@name`), and the same-named snapshots
    /// of child datasets if `recursive` (as a recursive create made them).
    pub fn delete_snapshot(&self, id: &str, recursive: bool) -> Result<(), TrueNasError> {
        let (dataset, name) = id.split_once('@').unwrap_or((id, ""));
        check_dataset(&self.url, dataset)?;
        check_snapshot_name(&self.url, dataset, name)?;
        let options = json!({"defer": false, "recursive": recursive});
        let deleted = match &self.wire {
            Wire::Rpc(_) => self.rpc(&self.methods.method("delete"), json!([id, options])),
            Wire::Rest => {
                let path = format!("{}/id/{}", self.methods.rest_path(), encode(id));
                self.rest("DELETE", &path, Some(&options))
            }
        };
        match deleted {
            Ok(_) => Ok(()),
            Err(Failure::Refused(r))
                if r.errname == "ENOENT" || r.reason.contains("does not exist") || r.reason.contains("not found") =>
            {
                Err(TrueNasError::SnapshotNotFound {
                    url: self.url.clone(),
                    dataset: dataset.to_owned(),
                    id: id.to_owned(),
                })
            }
            Err(Failure::Refused(r)) if matches!(r.errname.as_str(), "EACCES" | "EPERM") => {
                Err(self.not_allowed(dataset, "deleting a snapshot", r.reason))
            }
            Err(Failure::Refused(r)) => Err(TrueNasError::SnapshotRefused {
                url: self.url.clone(),
                dataset: dataset.to_owned(),
                id: id.to_owned(),
                action: "delete",
                reason: r.reason,
            }),
            Err(Failure::Http(e)) => Err(self.http_failure(dataset, e)),
        }
    }

    /// The snapshots of `dataset` (not of its children) whose name starts with
    /// `prefix`, oldest first: leftovers of crashed runs to sweep, or the
    /// ones beyond the last N to release.
    pub fn list_snapshots(&self, dataset: &str, prefix: &str) -> Result<Vec<Snapshot>, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        let listed = match &self.wire {
            Wire::Rpc(_) => {
                let filters = json!([["dataset", "=", dataset], ["snapshot_name", "^", prefix]]);
                self.rpc(&self.methods.method("query"), json!([filters, {}]))
            }
            Wire::Rest => {
                let path = format!("{}?dataset={}", self.methods.rest_path(), encode(dataset));
                self.rest("GET", &path, None)
            }
        };
        let listed = listed.map_err(|f| self.dataset_failure(dataset, "listing snapshots", f))?;
        let Some(entries) = listed.as_array() else {
            return Err(self.protocol(dataset, format!("the snapshot list is not a list: {listed}")));
        };
        // Filtered here too: the REST query has no prefix operator.
        let mut snapshots: Vec<Snapshot> = entries
            .iter()
            .filter_map(parse_snapshot)
            .filter(|s| s.dataset == dataset && s.name.starts_with(prefix))
            .collect();
        snapshots.sort_by(|a, b| (a.createtxg, &a.name).cmp(&(b.createtxg, &b.name)));
        Ok(snapshots)
    }

    /// Ends the session (closes the WebSocket).
    pub fn close(self) {
        if let Wire::Rpc(rpc) = self.wire {
            rpc.into_inner().close();
        }
    }

    /// The transport, for callers that want to reuse it.
    pub fn transport(&self) -> &T {
        &self.http
    }

    fn rpc(&self, method: &str, params: Value) -> Result<Value, Failure> {
        let Wire::Rpc(rpc) = &self.wire else { unreachable!("JSON-RPC call on a REST connection") };
        let answer = rpc.borrow_mut().call(method, params);
        match answer {
            Ok(value) => Ok(value),
            Err(RpcFailure::Error { code: -32601, .. }) => Err(Failure::Http(TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "{}: the NAS has no method {method} (JSON-RPC -32601): this TrueNAS version is not supported",
                    self.url
                ),
            ))),
            Err(RpcFailure::Error { message, data, .. }) => {
                // A validation error carries the specific errno in `extra`
                // ([[attribute, message, errno]]; InstanceNotFound is ENOENT),
                // its `error` being EINVAL; a CallError has it in `error`.
                let from_extra = data
                    .get("extra")
                    .and_then(Value::as_array)
                    .and_then(|extra| extra.iter().find_map(|e| e.get(2).and_then(Value::as_i64)));
                let errname = match from_extra.map(errname_of).filter(|n| !n.is_empty()) {
                    Some(name) => name.to_owned(),
                    None => data
                        .get("errname")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| data.get("error").and_then(Value::as_i64).map(|n| errname_of(n).to_owned()))
                        .unwrap_or_default(),
                };
                let reason = data.get("reason").and_then(Value::as_str).map_or(message, str::to_owned);
                Err(Failure::Refused(Refusal { errname, reason }))
            }
            Err(RpcFailure::Transport(e)) => Err(Failure::Http(e)),
        }
    }

    fn rest(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        match self.http.request(method, path, body.map(Value::to_string)) {
            Ok((200..=299, text)) => Ok(parse_body(&text)),
            Ok((401 | 403, text)) => {
                Err(Failure::Http(TransportError::new(TransportErrorKind::Auth, body_message(&parse_body(&text)))))
            }
            Ok((404, text)) => Err(Failure::Refused(Refusal {
                errname: "ENOENT".to_owned(),
                reason: body_message(&parse_body(&text)),
            })),
            Ok((_, text)) => Err(Failure::Refused(rest_refusal(&parse_body(&text)))),
            Err(e) => Err(Failure::Http(e)),
        }
    }

    fn no_dataset(&self, dataset: &str) -> TrueNasError {
        TrueNasError::DatasetNotFound { url: self.url.clone(), dataset: dataset.to_owned() }
    }

    fn not_allowed(&self, dataset: &str, what: &str, reason: String) -> TrueNasError {
        TrueNasError::NotAllowed { url: self.url.clone(), dataset: dataset.to_owned(), what: what.to_owned(), reason }
    }

    fn protocol(&self, dataset: &str, reason: String) -> TrueNasError {
        TrueNasError::Protocol { url: self.url.clone(), dataset: dataset.to_owned(), reason }
    }

    fn http_failure(&self, dataset: &str, e: TransportError) -> TrueNasError {
        match e.kind {
            TransportErrorKind::Auth => TrueNasError::WrongApiKey { url: self.url.clone(), reason: e.message },
            _ => TrueNasError::Connection { url: self.url.clone(), dataset: dataset.to_owned(), source: e },
        }
    }

    fn dataset_failure(&self, dataset: &str, what: &str, f: Failure) -> TrueNasError {
        match f {
            Failure::Refused(r) if r.errname == "ENOENT" => self.no_dataset(dataset),
            Failure::Refused(r) if matches!(r.errname.as_str(), "EACCES" | "EPERM") => {
                self.not_allowed(dataset, what, r.reason)
            }
            Failure::Refused(r) => self.protocol(dataset, format!("{what} failed: {}", r.reason)),
            Failure::Http(e) => self.http_failure(dataset, e),
        }
    }
}

/// REST's error bodies: `{message, errno}` for a CallError, `{attribute:
/// [{message, errno}], ...}` for validation errors.
fn rest_refusal(body: &Value) -> Refusal {
    if let Some(message) = body.get("message").and_then(Value::as_str) {
        let errname = body.get("errno").and_then(Value::as_i64).map(errname_of).unwrap_or_default().to_owned();
        return Refusal { errname, reason: message.to_owned() };
    }
    let mut errname = String::new();
    let mut reasons = Vec::new();
    if let Some(fields) = body.as_object() {
        for (attribute, errors) in fields {
            for error in errors.as_array().into_iter().flatten() {
                let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
                if errname.is_empty() {
                    errname = error.get("errno").and_then(Value::as_i64).map(errname_of).unwrap_or_default().to_owned();
                }
                reasons.push(if attribute == "null" { message.to_owned() } else { format!("{attribute}: {message}") });
            }
        }
    }
    let reason = if reasons.is_empty() { body.to_string() } else { reasons.join("; ") };
    Refusal { errname, reason }
}

enum LoginError {
    Refused(String),
    Http(TransportError),
}

fn rpc_transport(url: &str, f: RpcFailure) -> TransportError {
    match f {
        RpcFailure::Transport(e) => e,
        RpcFailure::Error { code, message, .. } => {
            TransportError::new(TransportErrorKind::Protocol, format!("{url}: JSON-RPC error {code}: {message}"))
        }
    }
}

/// Logs the JSON-RPC session in with the API key (put in by the transport).
fn login<S: crate::transport::Socket>(rpc: &mut Rpc<S>, username: Option<&str>, url: &str) -> Result<(), LoginError> {
    let Some(username) = username else {
        let accepted = rpc
            .call_with_key("auth.login_with_api_key", json!([KEY_PLACEHOLDER]), KEY_PLACEHOLDER)
            .map_err(|f| LoginError::Http(rpc_transport(url, f)))?;
        return match accepted {
            Value::Bool(true) => Ok(()),
            _ => Err(LoginError::Refused("auth.login_with_api_key answered false".to_owned())),
        };
    };
    let request = json!({"mechanism": "API_KEY_PLAIN", "username": username, "api_key": KEY_PLACEHOLDER});
    let answer = rpc.call_with_key("auth.login_ex", json!([request]), KEY_PLACEHOLDER).map_err(|e| match e {
        RpcFailure::Error { data, message, .. } => {
            LoginError::Refused(data.get("reason").and_then(Value::as_str).map_or(message, str::to_owned))
        }
        other => LoginError::Http(rpc_transport(url, other)),
    })?;
    match answer.get("response_type").and_then(Value::as_str) {
        Some("SUCCESS") => Ok(()),
        Some("EXPIRED") => Err(LoginError::Refused(format!("the API key of user {username:?} has expired"))),
        Some("AUTH_ERR") => Err(LoginError::Refused(format!(
            "auth.login_ex refused the key for user {username:?}: is it this user's key?"
        ))),
        Some(other) => {
            Err(LoginError::Refused(format!("auth.login_ex answered {other}, which this client cannot complete")))
        }
        None => Err(LoginError::Http(TransportError::new(
            TransportErrorKind::Protocol,
            format!("{url}: auth.login_ex answered {answer}"),
        ))),
    }
}

fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The server's own words from an error body, cut to a readable length.
fn body_message(body: &Value) -> String {
    let text = match body {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        Value::Object(map) => match map.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => body.to_string(),
        },
        other => other.to_string(),
    };
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `<mountpoint>/.zfs/snapshot/<name>`: where a snapshot's files are.
pub fn snapshot_path(mountpoint: &str, name: &str) -> String {
    format!("{}/.zfs/snapshot/{name}", mountpoint.trim_end_matches('/'))
}

fn encode(name: &str) -> String {
    utf8_percent_encode(name, PATH_SEGMENT).to_string()
}

fn parse_version(url: &str, text: &Value) -> Result<Version, TrueNasError> {
    text.as_str().and_then(Version::parse).ok_or_else(|| TrueNasError::Protocol {
        url: url.to_owned(),
        dataset: String::new(),
        reason: format!("system.version answered {text}, not a TrueNAS version"),
    })
}

fn parse_snapshot(entry: &Value) -> Option<Snapshot> {
    let id = entry.get("id").or_else(|| entry.get("name")).and_then(Value::as_str)?.to_owned();
    let (from_id_dataset, from_id_name) = id.split_once('@')?;
    let dataset = entry.get("dataset").and_then(Value::as_str).unwrap_or(from_id_dataset).to_owned();
    let name = entry.get("snapshot_name").and_then(Value::as_str).unwrap_or(from_id_name).to_owned();
    let number = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let createtxg = entry.get("createtxg").and_then(number).or_else(|| {
        let property = entry.get("properties")?.get("createtxg")?;
        property.get("parsed").and_then(number).or_else(|| property.get("value").and_then(number))
    });
    Some(Snapshot { id, dataset, name, createtxg })
}

/// ZFS's name characters: alphanumerics and `_ - : . ` (space).
fn zfs_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | ' ')
}

fn check_dataset(url: &str, dataset: &str) -> Result<(), TrueNasError> {
    let ok = !dataset.is_empty()
        && dataset
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && part.chars().all(zfs_name_char));
    if ok {
        Ok(())
    } else {
        Err(TrueNasError::Config {
            url: url.to_owned(),
            dataset: dataset.to_owned(),
            reason: "not a dataset name: write it as pool/dataset (letters, digits, _ - : . and spaces; \
                     no leading /, no /mnt/, no @)"
                .to_owned(),
        })
    }
}

fn check_snapshot_name(url: &str, dataset: &str, name: &str) -> Result<(), TrueNasError> {
    if !name.is_empty() && name != "." && name != ".." && name.chars().all(zfs_name_char) {
        Ok(())
    } else {
        Err(TrueNasError::Config {
            url: url.to_owned(),
            dataset: dataset.to_owned(),
            reason: format!("{name:?} is not a snapshot name (letters, digits, _ - : . and spaces)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_encoded() {
        assert!(check_dataset("u", "tank/data").is_ok());
        for bad in ["", "/mnt/tank", "tank/", "tank@x", "tank/../x", "tank//x"] {
            assert!(check_dataset("u", bad).is_err(), "{bad}");
        }
        assert!(check_snapshot_name("u", "tank", "orch-2026-12-01T08:00").is_ok());
        assert!(check_snapshot_name("u", "tank", "a/b").is_err());
        assert_eq!(encode("tank/my data@orch-1"), "tank%2Fmy%20data%40orch-1");
    }

    #[test]
    fn snapshots_are_read_from_both_shapes() {
        let s = parse_snapshot(&json!({"id": "tank/a@x", "dataset": "tank/a", "snapshot_name": "x", "createtxg": "7"}))
            .unwrap();
        assert_eq!(
            s,
            Snapshot { id: "tank/a@x".into(), dataset: "tank/a".into(), name: "x".into(), createtxg: Some(7) }
        );
        let s = parse_snapshot(&json!({"name": "tank/a@y", "properties": {"createtxg": {"value": "9"}}})).unwrap();
        assert_eq!((s.dataset.as_str(), s.name.as_str(), s.createtxg), ("tank/a", "y", Some(9)));
    }
}
