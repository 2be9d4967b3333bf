//! [`TrueNas`]: API detection, login and the dataset and snapshot operations.

use orchestrator_http::{
    ErrorKind as HttpKind, HttpClient, HttpError, JsonRpc, Method, Secret, Timeouts, TlsConfig, WsClient,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::error::TrueNasError;
use crate::version::Version;

/// Where and how to reach the NAS.
#[derive(Debug, Clone)]
pub struct TrueNasConfig {
    /// `https://nas.example` (or `http://` to a loopback address).
    pub url: String,
    pub api_key: Secret,
    /// The user the API key belongs to. With it, JSON-RPC logins use
    /// `auth.login_ex` (`API_KEY_PLAIN`, the current form, which needs the
    /// user); without it, `auth.login_with_api_key` (kept by 25.04 and 25.10
    /// as the legacy form). REST ignores it.
    pub username: Option<String>,
    pub tls: TlsConfig,
    pub timeouts: Timeouts,
}

impl TrueNasConfig {
    pub fn new(url: impl Into<String>, api_key: Secret) -> TrueNasConfig {
        TrueNasConfig {
            url: url.into(),
            api_key,
            username: None,
            tls: TlsConfig::default(),
            timeouts: Timeouts::default(),
        }
    }
}

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

enum Wire {
    Rpc(Box<Mutex<JsonRpc>>),
    Rest,
}

/// A logged-in connection to one TrueNAS.
pub struct TrueNas {
    http: HttpClient,
    url: String,
    wire: Wire,
    version: Version,
    methods: SnapshotMethods,
}

impl std::fmt::Debug for TrueNas {
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
    Http(HttpError),
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

impl TrueNas {
    /// Connects, finds the API generation, logs in with the API key and reads
    /// the version (see the crate docs).
    pub async fn connect(config: TrueNasConfig) -> Result<TrueNas, TrueNasError> {
        let shown = config.url.trim().to_owned();
        let http = HttpClient::new(&config.url, config.tls.clone())
            .map_err(|source| TrueNasError::Connection {
                url: shown.clone(),
                dataset: String::new(),
                source: Box::new(source),
            })?
            .with_timeouts(config.timeouts)
            .with_bearer(config.api_key.clone());
        let url = http.base_url();
        let connection = |source: HttpError| match source {
            HttpError::Auth { message, .. } => TrueNasError::WrongApiKey { url: url.clone(), reason: message },
            source => TrueNasError::Connection { url: url.clone(), dataset: String::new(), source: Box::new(source) },
        };
        match WsClient::connect(&http, "/api/current").await {
            Ok(ws) => {
                let mut rpc = JsonRpc::new(ws);
                login(&mut rpc, &config, &url).await.map_err(|e| match e {
                    LoginError::Refused(reason) => TrueNasError::WrongApiKey { url: url.clone(), reason },
                    LoginError::Http(e) => connection(e),
                })?;
                let text = rpc.call("system.version", json!([])).await.map_err(connection)?;
                let version = parse_version(&url, &text)?;
                let methods = SnapshotMethods::for_version(&version);
                Ok(TrueNas { http, url, wire: Wire::Rpc(Box::new(Mutex::new(rpc))), version, methods })
            }
            Err(e) if e.kind() == HttpKind::NotFound || matches!(e, HttpError::Rejected { .. }) => {
                // No JSON-RPC route (404, or a front end answering the upgrade
                // with a page): TrueNAS 24.10 (or older), REST only.
                let text = match http.request(Method::GET, "/api/v2.0/system/version", None).await {
                    Ok((200..=299, text)) => text,
                    Ok((status, body)) => {
                        return Err(TrueNasError::Protocol {
                            url,
                            dataset: String::new(),
                            reason: format!("GET /api/v2.0/system/version answered HTTP {status}: {body}"),
                        });
                    }
                    Err(HttpError::NotFound { .. }) => {
                        return Err(TrueNasError::Protocol {
                            url,
                            dataset: String::new(),
                            reason: "neither /api/current (JSON-RPC) nor /api/v2.0 (REST) exists: is this a \
                                     TrueNAS (24.10 or later), and is the URL its web UI's address?"
                                .to_owned(),
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
    pub async fn dataset_mountpoint(&self, dataset: &str) -> Result<String, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        let entry = match &self.wire {
            Wire::Rpc(_) => {
                let options = json!({"extra": {"retrieve_children": false, "properties": ["mountpoint"]}});
                let found = self
                    .rpc("pool.dataset.query", json!([[["id", "=", dataset]], options]))
                    .await
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
                self.rest(Method::GET, &path, None)
                    .await
                    .map_err(|f| self.dataset_failure(dataset, "reading the dataset", f))?
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

    /// Takes snapshot `dataset@name` (with its child datasets if `recursive`).
    pub async fn create_snapshot(&self, dataset: &str, name: &str, recursive: bool) -> Result<Snapshot, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        check_snapshot_name(&self.url, dataset, name)?;
        let id = format!("{dataset}@{name}");
        let payload = json!({"dataset": dataset, "name": name, "recursive": recursive});
        let created = match &self.wire {
            Wire::Rpc(_) => self.rpc(&self.methods.method("create"), json!([payload])).await,
            Wire::Rest => self.rest(Method::POST, self.methods.rest_path(), Some(&payload)).await,
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
    pub async fn delete_snapshot(&self, id: &str, recursive: bool) -> Result<(), TrueNasError> {
        let (dataset, name) = id.split_once('@').unwrap_or((id, ""));
        check_dataset(&self.url, dataset)?;
        check_snapshot_name(&self.url, dataset, name)?;
        let options = json!({"defer": false, "recursive": recursive});
        let deleted = match &self.wire {
            Wire::Rpc(_) => self.rpc(&self.methods.method("delete"), json!([id, options])).await,
            Wire::Rest => {
                let path = format!("{}/id/{}", self.methods.rest_path(), encode(id));
                self.rest(Method::DELETE, &path, Some(&options)).await
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
    pub async fn list_snapshots(&self, dataset: &str, prefix: &str) -> Result<Vec<Snapshot>, TrueNasError> {
        check_dataset(&self.url, dataset)?;
        let listed = match &self.wire {
            Wire::Rpc(_) => {
                let filters = json!([["dataset", "=", dataset], ["snapshot_name", "^", prefix]]);
                self.rpc(&self.methods.method("query"), json!([filters, {}])).await
            }
            Wire::Rest => {
                let path = format!("{}?dataset={}", self.methods.rest_path(), encode(dataset));
                self.rest(Method::GET, &path, None).await
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

    /// `<mountpoint>/.zfs/snapshot/<name>`: where a snapshot's files are.
    pub fn snapshot_path(mountpoint: &str, name: &str) -> String {
        format!("{}/.zfs/snapshot/{name}", mountpoint.trim_end_matches('/'))
    }

    /// Ends the session (closes the WebSocket).
    pub async fn close(self) {
        if let Wire::Rpc(rpc) = self.wire {
            rpc.into_inner().close().await;
        }
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value, Failure> {
        let Wire::Rpc(rpc) = &self.wire else { unreachable!("JSON-RPC call on a REST connection") };
        match rpc.lock().await.call(method, params).await {
            Ok(value) => Ok(value),
            Err(HttpError::Rpc { code: -32601, url, method, .. }) => Err(Failure::Http(HttpError::Protocol {
                url,
                reason: format!(
                    "the NAS has no method {method} (JSON-RPC -32601): this TrueNAS version is not supported"
                ),
            })),
            Err(HttpError::Rpc { message, data, .. }) => {
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
            Err(e) => Err(Failure::Http(e)),
        }
    }

    async fn rest(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        match self.http.request(method, path, body).await {
            Ok((200..=299, value)) => Ok(value),
            Ok((_, body)) => Err(Failure::Refused(rest_refusal(&body))),
            Err(HttpError::NotFound { message, .. }) => {
                Err(Failure::Refused(Refusal { errname: "ENOENT".to_owned(), reason: message }))
            }
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

    fn http_failure(&self, dataset: &str, e: HttpError) -> TrueNasError {
        match e {
            HttpError::Auth { message, .. } => TrueNasError::WrongApiKey { url: self.url.clone(), reason: message },
            source => TrueNasError::Connection {
                url: self.url.clone(),
                dataset: dataset.to_owned(),
                source: Box::new(source),
            },
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
    Http(HttpError),
}

/// Logs the JSON-RPC session in with the API key.
async fn login(rpc: &mut JsonRpc, config: &TrueNasConfig, url: &str) -> Result<(), LoginError> {
    let Some(username) = &config.username else {
        let accepted =
            rpc.call("auth.login_with_api_key", json!([config.api_key.expose()])).await.map_err(LoginError::Http)?;
        return match accepted {
            Value::Bool(true) => Ok(()),
            _ => Err(LoginError::Refused("auth.login_with_api_key answered false".to_owned())),
        };
    };
    let request = json!({"mechanism": "API_KEY_PLAIN", "username": username, "api_key": config.api_key.expose()});
    let answer = rpc.call("auth.login_ex", json!([request])).await.map_err(|e| match e {
        HttpError::Rpc { data, message, .. } => {
            LoginError::Refused(data.get("reason").and_then(Value::as_str).map_or(message, str::to_owned))
        }
        other => LoginError::Http(other),
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
        None => Err(LoginError::Http(HttpError::Protocol {
            url: url.to_owned(),
            reason: format!("auth.login_ex answered {answer}"),
        })),
    }
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
