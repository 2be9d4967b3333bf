//! A fake TrueNAS on loopback, following the documented API of each
//! generation closely enough for a client to be tested against it:
//!
//! | [`Generation`] | transports | snapshot methods |
//! |---|---|---|
//! | `V24_10` | REST `/api/v2.0/…` only (no `/api/current`: 404) | REST `/api/v2.0/zfs/snapshot` |
//! | `V25_04` | JSON-RPC 2.0 over WebSocket at `/api/current`, REST too | `zfs.snapshot.*` (`pool.snapshot.*` does not exist) |
//! | `V25_10` | JSON-RPC at `/api/current`, REST too | `pool.snapshot.*` (`zfs.snapshot.*` private: refused) |
//!
//! Common methods: `auth.login_with_api_key` (false for a wrong key),
//! `auth.login_ex` (`API_KEY_PLAIN`), `core.ping`, `system.version`,
//! `pool.dataset.query`; REST takes `Authorization: Bearer <key>` (401
//! otherwise, as `401: Unauthorized`). Error shapes follow middleware's
//! (`api/base/server/ws_handler/rpc.py`, `restful.py`, `plugins/zfs_/snapshot.py`):
//! JSON-RPC `-32601 Method does not exist`; a `CallError` is `-32001 Method
//! call error` with `data {error, errname, reason}` (REST: 422 `{message,
//! errno}`); a validation error or `InstanceNotFound` is `-32602 Invalid
//! params` with `data.extra [[attribute, message, errno]]` (REST: 422
//! `{attribute: [{message, errno}]}`); REST `GET …/id/<id>` of nothing is 404.
//! Creating an existing snapshot is a `CallError` EEXIST ("… already
//! exists"), of a missing dataset EFAULT ("… dataset does not exist");
//! deleting a missing snapshot is `InstanceNotFound` (ENOENT).
//!
//! Datasets are directories under `root_dir` ([`FakeTrueNas::add_dataset`]),
//! or elsewhere ([`FakeTrueNas::add_dataset_at`]), or not mounted
//! ([`FakeTrueNas::add_unmounted_dataset`]: `mountpoint` `null` or
//! `"legacy"`). `pool.dataset.query` takes middleware's filters (REST:
//! `?id__^=tank/data/`, `extra.*` ignored). A snapshot is faked as ZFS
//! shows one: the dataset's mountpoint copied (without any `.zfs`) into
//! `<mountpoint>/.zfs/snapshot/<name>/`, where another dataset mounted inside
//! it is an empty directory; a recursive one copies each descendant into its
//! own `<its mountpoint>/.zfs/snapshot/<name>/`. Deleting removes the copies.
//! Every call is recorded ([`FakeTrueNas::calls`]), and after each snapshot
//! created over JSON-RPC a `collection_update` notification is sent first, as
//! a subscribed middleware would, so clients must skip notifications.
//!
//! Plain HTTP by default; [`FakeTrueNas::start_tls`] serves HTTPS with a
//! certificate for `127.0.0.1`/`localhost` signed by a throw-away CA
//! ([`FakeTrueNas::ca_file`], [`FakeTrueNas::cert_fingerprint`]).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The user every API key of the fake belongs to (for `auth.login_ex`).
pub const API_KEY_USER: &str = "backup";

/// Which TrueNAS release line to behave as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 24.10 Electric Eel: REST v2.0 only.
    V24_10,
    /// 25.04 Fangtooth: JSON-RPC with `zfs.snapshot.*`.
    V25_04,
    /// 25.10 Goldeye: JSON-RPC with `pool.snapshot.*`.
    V25_10,
}

impl Generation {
    /// What `system.version` answers.
    pub fn version(self) -> &'static str {
        match self {
            Generation::V24_10 => "TrueNAS-SCALE-24.10.2.1",
            Generation::V25_04 => "TrueNAS-25.04.2",
            Generation::V25_10 => "TrueNAS-25.10.0",
        }
    }

    fn has_jsonrpc(self) -> bool {
        self != Generation::V24_10
    }

    /// The public snapshot namespace: `zfs.snapshot` or `pool.snapshot`.
    pub fn snapshot_namespace(self) -> &'static str {
        match self {
            Generation::V24_10 | Generation::V25_04 => "zfs.snapshot",
            Generation::V25_10 => "pool.snapshot",
        }
    }
}

/// How a call arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Rest,
    JsonRpc,
}

/// One recorded call: for JSON-RPC the method name and params; for REST
/// `"GET /api/v2.0/…"` (path percent-decoded) and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub transport: Transport,
    pub method: String,
    pub params: Value,
    /// Whether it succeeded.
    pub ok: bool,
}

#[derive(Debug, Clone)]
struct Snapshot {
    dataset: String,
    name: String,
    txg: u64,
}

struct State {
    generation: Generation,
    api_key: String,
    datasets: BTreeMap<String, Mountpoint>,
    snapshots: BTreeMap<String, Snapshot>,
    txg: u64,
    calls: Vec<Call>,
    created: Vec<String>,
    deleted: Vec<String>,
    /// Called after each snapshot is taken (see [`FakeTrueNas::after_snapshot`]).
    after_snapshot: Option<Hook>,
    /// Deletes fail as a busy dataset does (see [`FakeTrueNas::refuse_deletes`]).
    refuse_deletes: bool,
}

/// Where a fake dataset is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mountpoint {
    /// Mounted at this directory (`mountpoint` is the path).
    At(PathBuf),
    /// Not mounted (`canmount=off`, `mountpoint=none`): `mountpoint` is `null`.
    Unmounted,
    /// `mountpoint=legacy`: mounted by fstab, if at all; `mountpoint` is `"legacy"`.
    Legacy,
}

impl Mountpoint {
    fn path(&self) -> Option<&Path> {
        match self {
            Mountpoint::At(path) => Some(path),
            Mountpoint::Unmounted | Mountpoint::Legacy => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            Mountpoint::At(path) => json!(path.to_string_lossy()),
            Mountpoint::Unmounted => Value::Null,
            Mountpoint::Legacy => json!("legacy"),
        }
    }
}

/// A test's code run after a snapshot is taken: (dataset, its mountpoint).
type Hook = Arc<dyn Fn(&str, &Path) + Send + Sync>;

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The TLS material of an HTTPS fake.
struct Tls {
    ca_file: PathBuf,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

pub struct FakeTrueNas {
    port: u16,
    state: Shared,
    root: PathBuf,
    tls: Option<Tls>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// An error as middleware raises it, reported in its JSON-RPC or REST shape.
enum Failure {
    /// `CallError(errmsg, errno)`: JSON-RPC -32001 with `data {error, errname,
    /// reason: "[ERRNAME] errmsg"}`; REST 422 `{message: errmsg, errno}`.
    Call { errno: i64, errname: &'static str, message: String },
    /// `ValidationError(attribute, errmsg, errno)` (`InstanceNotFound` is one
    /// with no attribute and ENOENT): JSON-RPC -32602 `Invalid params` with
    /// `data {error: EINVAL, reason, extra: [[attribute, errmsg, errno]]}`;
    /// REST 422 `{attribute: [{message, errno}]}`.
    Invalid { attribute: Option<String>, errno: i64, errname: &'static str, message: String },
    /// `MatchNotFound` of a REST `GET …/id/<id>`: 404 `{message: ""}`.
    NoMatch,
}

impl Failure {
    fn call(errno: i64, errname: &'static str, message: String) -> Failure {
        Failure::Call { errno, errname, message }
    }

    fn invalid(attribute: &str, message: &str) -> Failure {
        Failure::Invalid {
            attribute: Some(attribute.to_owned()),
            errno: 22,
            errname: "EINVAL",
            message: message.to_owned(),
        }
    }

    fn instance_not_found(message: String) -> Failure {
        Failure::Invalid { attribute: None, errno: 2, errname: "ENOENT", message }
    }

    /// The JSON-RPC error object: (code, message, data).
    fn rpc(&self) -> (i64, &'static str, Value) {
        match self {
            Failure::Call { errno, errname, message } => (
                -32001,
                "Method call error",
                json!({"error": errno, "errname": errname, "reason": format!("[{errname}] {message}"), "trace": null, "extra": null}),
            ),
            Failure::Invalid { attribute, errno, errname, message } => {
                let shown = attribute.as_deref().unwrap_or("None");
                (
                    -32602,
                    "Invalid params",
                    json!({
                        "error": 22, "errname": "EINVAL", "reason": format!("[{errname}] {shown}: {message}"),
                        "trace": null, "extra": [[attribute, message, errno]],
                    }),
                )
            }
            Failure::NoMatch => (-32001, "Method call error", json!({"error": 2, "errname": "ENOENT", "reason": ""})),
        }
    }

    /// The REST status and body.
    fn rest(&self) -> (StatusCode, Value) {
        match self {
            Failure::Call { errno, message, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"message": message, "errno": errno}))
            }
            Failure::Invalid { attribute, errno, message, .. } => {
                let key = attribute.clone().unwrap_or_else(|| "null".to_owned());
                (StatusCode::UNPROCESSABLE_ENTITY, json!({key: [{"message": message, "errno": errno}]}))
            }
            Failure::NoMatch => (StatusCode::NOT_FOUND, json!({"message": ""})),
        }
    }
}

fn certificates() -> (String, String, String, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "fake TrueNAS test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "truenas.local");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

impl FakeTrueNas {
    /// Serves plain HTTP on a free loopback port. `root_dir` holds the
    /// datasets' mountpoints.
    pub fn start(generation: Generation, api_key: &str, root_dir: &Path) -> FakeTrueNas {
        FakeTrueNas::spawn(generation, api_key, root_dir, false)
    }

    /// Serves HTTPS (certificate for 127.0.0.1 and localhost).
    pub fn start_tls(generation: Generation, api_key: &str, root_dir: &Path) -> FakeTrueNas {
        FakeTrueNas::spawn(generation, api_key, root_dir, true)
    }

    fn spawn(generation: Generation, api_key: &str, root_dir: &Path, tls: bool) -> FakeTrueNas {
        let state = Arc::new(Mutex::new(State {
            generation,
            api_key: api_key.to_owned(),
            datasets: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            txg: 1000,
            calls: Vec::new(),
            created: Vec::new(),
            deleted: Vec::new(),
            after_snapshot: None,
            refuse_deletes: false,
        }));
        let (acceptor, tls) = if tls {
            use rustls::pki_types::pem::PemObject;
            let (ca, cert, key, der) = certificates();
            let dir = tempfile::tempdir().expect("temp dir");
            let ca_file = dir.path().join("ca.pem");
            fs::write(&ca_file, ca).expect("write CA");
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("server certificate PEM");
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("server key PEM");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server TLS config");
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            (Some(acceptor), Some(Tls { ca_file, fingerprint: fingerprint(&der), _dir: dir }))
        } else {
            (None, None)
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-truenas-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                let Ok((tcp, _)) = accepted else { continue };
                                let state = served.clone();
                                let acceptor = acceptor.clone();
                                tokio::spawn(async move {
                                    match acceptor {
                                        None => serve(tcp, state).await,
                                        Some(acceptor) => {
                                            if let Ok(tls) = acceptor.accept(tcp).await {
                                                serve(tls, state).await;
                                            }
                                        }
                                    }
                                });
                            }
                        }
                    }
                });
            })
            .expect("spawn the fake TrueNAS");
        FakeTrueNas { port, state, root: root_dir.to_owned(), tls, shutdown: Some(shutdown), thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/` or `https://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The CA that signed the HTTPS certificate (PEM); `None` for plain HTTP.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_file.as_path())
    }

    /// SHA-256 of the server certificate, `AB:CD:…` as OpenSSL prints it.
    pub fn cert_fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.fingerprint.as_str())
    }

    /// Creates dataset `name` (e.g. `tank/data`) with its mountpoint
    /// `<root_dir>/<name>` (made if missing), and returns the mountpoint.
    pub fn add_dataset(&self, name: &str) -> PathBuf {
        self.add_dataset_at(name, &self.root.join(name))
    }

    /// Creates dataset `name` mounted at `mountpoint` (made if missing),
    /// which may lie outside its parent's mountpoint, and returns it.
    pub fn add_dataset_at(&self, name: &str, mountpoint: &Path) -> PathBuf {
        fs::create_dir_all(mountpoint).expect("create the mountpoint");
        lock(&self.state).datasets.insert(name.to_owned(), Mountpoint::At(mountpoint.to_owned()));
        mountpoint.to_owned()
    }

    /// Creates dataset `name` that is not mounted (`legacy`: with
    /// `mountpoint=legacy`); its snapshots have no files to read.
    pub fn add_unmounted_dataset(&self, name: &str, legacy: bool) {
        let mount = if legacy { Mountpoint::Legacy } else { Mountpoint::Unmounted };
        lock(&self.state).datasets.insert(name.to_owned(), mount);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }

    /// The names of the calls so far (JSON-RPC methods, `VERB /path` for REST).
    pub fn methods(&self) -> Vec<String> {
        lock(&self.state).calls.iter().map(|c| c.method.clone()).collect()
    }

    /// Ids (`tank/data@name`) of the snapshots that exist now.
    pub fn snapshot_ids(&self) -> Vec<String> {
        lock(&self.state).snapshots.keys().cloned().collect()
    }

    /// Ids of every snapshot created, in order (including deleted ones).
    pub fn created(&self) -> Vec<String> {
        lock(&self.state).created.clone()
    }

    /// Ids of every snapshot deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.state).deleted.clone()
    }

    /// Runs `hook(dataset, mountpoint)` right after each snapshot is taken
    /// (before the answer is sent): to change the live dataset while a
    /// backup reads the snapshot, or to break something mid-run. It must not
    /// call the fake.
    pub fn after_snapshot(&self, hook: impl Fn(&str, &Path) + Send + Sync + 'static) {
        lock(&self.state).after_snapshot = Some(Arc::new(hook));
    }

    /// While `refuse` is set, deleting a snapshot fails as middleware's
    /// `CallError` EBUSY ("snapshot has dependent clones" / "dataset is busy").
    pub fn refuse_deletes(&self, refuse: bool) {
        lock(&self.state).refuse_deletes = refuse;
    }

    /// Creates a snapshot behind the client's back (a leftover of a crashed run).
    pub fn create_snapshot(&self, dataset: &str, name: &str) {
        let mut state = lock(&self.state);
        if let Err(f) = state.create(dataset, name, false) {
            panic!("fake snapshot {dataset}@{name}: {}", f.rpc().2["reason"]);
        }
    }
}

impl Drop for FakeTrueNas {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S, state: Shared) {
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(route(request, state).await) }
    });
    let _ =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades().await;
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn respond_text(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

async fn route(request: Request<Incoming>, state: Shared) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let generation = lock(&state).generation;
    if path == "/api/current" || path.starts_with("/api/v25.") {
        if !generation.has_jsonrpc() {
            return respond_text(StatusCode::NOT_FOUND, "404: Not Found");
        }
        return upgrade(request, state);
    }
    if let Some(rest) = path.strip_prefix("/api/v2.0/") {
        return rest_call(request, rest.to_owned(), state).await;
    }
    respond_text(StatusCode::NOT_FOUND, "404: Not Found")
}

fn upgrade(mut request: Request<Incoming>, state: Shared) -> Response<Full<Bytes>> {
    let is_websocket = request
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY).cloned().filter(|_| is_websocket) else {
        return respond_text(StatusCode::BAD_REQUEST, "400: Bad Request (expected a WebSocket upgrade)");
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        rpc_session(ws, state).await;
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes())).expect("accept key is ASCII"),
    );
    response
}

async fn rpc_session<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>, state: Shared) {
    let mut authenticated = false;
    while let Some(Ok(message)) = ws.next().await {
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let replies = match serde_json::from_str::<Value>(&text) {
            Err(e) => vec![json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e.to_string()}})],
            Ok(request) => rpc_request(&request, &mut authenticated, &state),
        };
        for reply in replies {
            if ws.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// The messages to send for one request: notifications first, then the answer.
fn rpc_request(request: &Value, authenticated: &mut bool, state: &Shared) -> Vec<Value> {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let error = |code: i64, message: &str, data: Option<Value>| {
        let mut error = json!({"code": code, "message": message});
        if let Some(data) = data {
            error["data"] = data;
        }
        json!({"jsonrpc": "2.0", "id": id, "error": error})
    };
    let (Some("2.0"), Some(method)) =
        (request.get("jsonrpc").and_then(Value::as_str), request.get("method").and_then(Value::as_str))
    else {
        return vec![error(-32600, "Invalid Request: 'jsonrpc' and 'method' are required", None)];
    };
    let params = request.get("params").cloned().unwrap_or_else(|| json!([]));
    let mut state = lock(state);
    let namespace = state.generation.snapshot_namespace();
    let known = matches!(
        method,
        "auth.login_with_api_key" | "auth.login_ex" | "core.ping" | "system.version" | "pool.dataset.query"
    ) || method.strip_prefix(namespace).is_some_and(|m| matches!(m, ".create" | ".delete" | ".query"));
    state.calls.push(Call {
        transport: Transport::JsonRpc,
        method: method.to_owned(),
        params: params.clone(),
        ok: false,
    });
    if !known {
        return vec![error(-32601, "Method does not exist", None)];
    }
    let needs_auth = !matches!(method, "auth.login_with_api_key" | "auth.login_ex" | "core.ping");
    if needs_auth && !*authenticated {
        let (code, message, data) = Failure::call(13, "EACCES", "Not authenticated".to_owned()).rpc();
        return vec![error(code, message, Some(data))];
    }
    let arg = |i: usize| params.get(i).cloned().unwrap_or(Value::Null);
    let mut notifications = Vec::new();
    let result: Result<Value, Failure> = match method {
        "core.ping" => Ok(json!("pong")),
        "auth.login_with_api_key" => {
            let ok = arg(0).as_str() == Some(state.api_key.as_str());
            *authenticated = ok;
            Ok(json!(ok))
        }
        "auth.login_ex" => {
            let data = arg(0);
            let ok = data.get("mechanism").and_then(Value::as_str) == Some("API_KEY_PLAIN")
                && data.get("username").and_then(Value::as_str) == Some(API_KEY_USER)
                && data.get("api_key").and_then(Value::as_str) == Some(state.api_key.as_str());
            *authenticated = ok;
            Ok(json!({"response_type": if ok { "SUCCESS" } else { "AUTH_ERR" }}))
        }
        "system.version" => Ok(json!(state.generation.version())),
        "pool.dataset.query" => {
            Ok(Value::Array(state.dataset_entries().into_iter().filter(|e| matches_filters(e, &arg(0))).collect()))
        }
        m if m.ends_with(".query") => {
            Ok(Value::Array(state.snapshot_entries().into_iter().filter(|e| matches_filters(e, &arg(0))).collect()))
        }
        m if m.ends_with(".create") => {
            let data = arg(0);
            match (data.get("dataset").and_then(Value::as_str), data.get("name").and_then(Value::as_str)) {
                (Some(dataset), Some(name)) => {
                    let recursive = data.get("recursive").and_then(Value::as_bool).unwrap_or(false);
                    let created = state.create(dataset, name, recursive);
                    if let Ok(entry) = &created {
                        notifications.push(json!({"jsonrpc": "2.0", "method": "collection_update", "params": {
                            "msg": "added", "collection": format!("{namespace}.query"),
                            "id": entry["id"], "fields": entry,
                        }}));
                    }
                    created
                }
                (None, _) => Err(Failure::invalid("snapshot_create.dataset", "Field required")),
                (_, None) => Err(Failure::invalid(
                    "snapshot_create.naming_schema",
                    "Either name or naming_schema must be provided",
                )),
            }
        }
        m if m.ends_with(".delete") => match arg(0).as_str() {
            Some(id) => {
                let recursive = arg(1).get("recursive").and_then(Value::as_bool).unwrap_or(false);
                state.delete(id, recursive).map(|()| json!(true))
            }
            None => Err(Failure::invalid("snapshot_delete.id", "Input should be a valid string")),
        },
        _ => unreachable!("checked above"),
    };
    let ok = result.is_ok();
    if let Some(call) = state.calls.last_mut() {
        call.ok = ok;
    }
    let answer = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(f) => {
            let (code, message, data) = f.rpc();
            error(code, message, Some(data))
        }
    };
    notifications.push(answer);
    notifications
}

/// Middleware's query filters, the few operators a client needs:
/// `[["field", "=", value], ["field", "^", prefix], ["field", "in", [..]], ...]`.
fn matches_filters(entry: &Value, filters: &Value) -> bool {
    let Some(filters) = filters.as_array() else { return true };
    filters.iter().all(|filter| {
        let (Some(field), Some(op), Some(value)) =
            (filter.get(0).and_then(Value::as_str), filter.get(1).and_then(Value::as_str), filter.get(2))
        else {
            return false;
        };
        let actual = entry.get(field).unwrap_or(&Value::Null);
        match op {
            "=" => actual == value,
            "!=" => actual != value,
            "^" => actual.as_str().zip(value.as_str()).is_some_and(|(a, p)| a.starts_with(p)),
            "$" => actual.as_str().zip(value.as_str()).is_some_and(|(a, p)| a.ends_with(p)),
            "in" => value.as_array().is_some_and(|values| values.contains(actual)),
            _ => false,
        }
    })
}

async fn rest_call(request: Request<Incoming>, rest: String, state: Shared) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let authorized = {
        let key = lock(&state).api_key.clone();
        request.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {key}").as_str())
    };
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let decoded = percent_decode_str(&rest).decode_utf8_lossy().into_owned();
    let mut state = lock(&state);
    state.calls.push(Call {
        transport: Transport::Rest,
        method: format!("{method} /api/v2.0/{decoded}"),
        params: body.clone(),
        ok: false,
    });
    if !authorized {
        return respond_text(StatusCode::UNAUTHORIZED, "401: Unauthorized");
    }
    // The REST names of the snapshot service: zfs/snapshot before 25.10, pool/snapshot from it.
    let snapshots = match state.generation {
        Generation::V24_10 | Generation::V25_04 => "zfs/snapshot",
        Generation::V25_10 => "pool/snapshot",
    };
    let segments: Vec<String> =
        rest.split('/').map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let not_found = || respond(StatusCode::NOT_FOUND, &json!({"message": "Not Found"}));
    let result: Result<Value, Failure> = match (&method, segments.as_slice()) {
        (&Method::GET, ["system", "version"]) => Ok(json!(state.generation.version())),
        (&Method::GET, ["pool", "dataset", "id", id]) => {
            match state.dataset_entries().into_iter().find(|e| e["id"] == *id) {
                Some(entry) => Ok(entry),
                None => Err(Failure::NoMatch),
            }
        }
        (&Method::GET, ["pool", "dataset"]) => {
            let filters = query_filters(&query);
            Ok(Value::Array(state.dataset_entries().into_iter().filter(|e| matches_filters(e, &filters)).collect()))
        }
        (m, [a, b, rest @ ..]) if format!("{a}/{b}") == snapshots => match (m, rest) {
            (&Method::GET, []) => {
                let filters = query_filters(&query);
                Ok(Value::Array(
                    state.snapshot_entries().into_iter().filter(|e| matches_filters(e, &filters)).collect(),
                ))
            }
            (&Method::POST, []) => {
                match (body.get("dataset").and_then(Value::as_str), body.get("name").and_then(Value::as_str)) {
                    (Some(dataset), Some(name)) => {
                        let recursive = body.get("recursive").and_then(Value::as_bool).unwrap_or(false);
                        let (dataset, name) = (dataset.to_owned(), name.to_owned());
                        state.create(&dataset, &name, recursive)
                    }
                    _ => Err(Failure::invalid("zfs_snapshot_create.dataset", "Field required")),
                }
            }
            (&Method::GET, ["id", id]) => match state.snapshot_entries().into_iter().find(|e| e["id"] == *id) {
                Some(entry) => Ok(entry),
                None => Err(Failure::NoMatch),
            },
            (&Method::DELETE, ["id", id]) => {
                let recursive = body.get("recursive").and_then(Value::as_bool).unwrap_or(false);
                let id = (*id).to_owned();
                state.delete(&id, recursive).map(|()| json!(true))
            }
            _ => return not_found(),
        },
        _ => return not_found(),
    };
    if let Some(call) = state.calls.last_mut() {
        call.ok = result.is_ok();
    }
    match result {
        Ok(value) => respond(StatusCode::OK, &value),
        Err(f) => {
            let (status, body) = f.rest();
            respond(status, &body)
        }
    }
}

/// REST query parameters as middleware's REST layer reads them
/// (`restful.py`): `field=value` is `=`, `field__op=value` takes `op` through
/// its map (`eq`, `neq`, `gt`, `lt`, `gte`, `lte`, `regex`) or as it is
/// (`id__^=tank/data/`); digits are numbers, `true`/`false`/`null` their
/// JSON values; `limit`, `offset`, `count`, `sort` and `extra.*` are
/// options, not filters.
fn query_filters(query: &str) -> Value {
    let decode = |text: &str| percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned();
    let filters: Vec<Value> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .filter(|(key, _)| !matches!(key.as_str(), "limit" | "offset" | "sort" | "count") && !key.starts_with("extra."))
        .map(|(key, value)| {
            let (field, op) = key.split_once("__").unwrap_or((key.as_str(), "="));
            let op = match op {
                "eq" => "=",
                "neq" => "!=",
                "gt" => ">",
                "lt" => "<",
                "gte" => ">=",
                "lte" => "<=",
                "regex" => "~",
                other => other,
            };
            let value = match value.as_str() {
                v if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    v.parse().map_or(json!(v), |n: u64| json!(n))
                }
                v if v.eq_ignore_ascii_case("true") => json!(true),
                v if v.eq_ignore_ascii_case("false") => json!(false),
                v if v.eq_ignore_ascii_case("null") => Value::Null,
                v => json!(v),
            };
            json!([field, op, value])
        })
        .collect();
    Value::Array(filters)
}

impl State {
    fn dataset_entries(&self) -> Vec<Value> {
        self.datasets
            .iter()
            .map(|(name, mountpoint)| {
                json!({
                    "id": name, "name": name, "pool": name.split('/').next().unwrap_or(name),
                    "type": "FILESYSTEM", "mountpoint": mountpoint.json(),
                    "encrypted": false, "children": [],
                })
            })
            .collect()
    }

    fn snapshot_entries(&self) -> Vec<Value> {
        self.snapshots.iter().map(|(id, s)| snapshot_entry(id, s)).collect()
    }

    fn create(&mut self, dataset: &str, name: &str, recursive: bool) -> Result<Value, Failure> {
        if !self.datasets.contains_key(dataset) {
            // middleware's do_create: any libzfs error but "already exists" is EFAULT.
            return Err(Failure::call(
                14,
                "EFAULT",
                format!("Failed to snapshot {dataset}@{name}: cannot open '{dataset}': dataset does not exist"),
            ));
        }
        if name.is_empty() || name.contains(['@', '/', ' ']) {
            return Err(Failure::invalid("snapshot_create.name", "Invalid snapshot name"));
        }
        let id = format!("{dataset}@{name}");
        if self.snapshots.contains_key(&id) {
            return Err(Failure::call(17, "EEXIST", format!("Failed to snapshot {id}: dataset already exists")));
        }
        let children = format!("{dataset}/");
        let targets: Vec<(String, Mountpoint)> = self
            .datasets
            .iter()
            .filter(|(n, _)| *n == dataset || (recursive && n.starts_with(&children)))
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        // As ZFS: a dataset's snapshot holds its own files only; another
        // dataset mounted inside it is an empty directory there.
        let mounts: Vec<PathBuf> = self.datasets.values().filter_map(|m| m.path().map(Path::to_owned)).collect();
        for (ds, mount) in targets {
            if let Some(mp) = mount.path() {
                let target = mp.join(".zfs").join("snapshot").join(name);
                let inner: Vec<PathBuf> = mounts.iter().filter(|m| *m != mp && m.starts_with(mp)).cloned().collect();
                if let Err(e) = copy_tree(mp, &target, &inner) {
                    return Err(Failure::call(14, "EFAULT", format!("Failed to snapshot {ds}@{name}: {e}")));
                }
            }
            self.txg += 1;
            let snap_id = format!("{ds}@{name}");
            self.snapshots.insert(snap_id.clone(), Snapshot { dataset: ds, name: name.to_owned(), txg: self.txg });
            self.created.push(snap_id);
        }
        if let Some(hook) = &self.after_snapshot {
            let mountpoint = self.datasets[dataset].path().map(Path::to_owned).unwrap_or_default();
            hook(dataset, &mountpoint);
        }
        Ok(snapshot_entry(&id, &self.snapshots[&id]))
    }

    fn delete(&mut self, id: &str, recursive: bool) -> Result<(), Failure> {
        let Some(snapshot) = self.snapshots.get(id).cloned() else {
            return Err(Failure::instance_not_found(format!("cannot open '{id}': dataset does not exist")));
        };
        if self.refuse_deletes {
            return Err(Failure::call(16, "EBUSY", format!("Failed to delete snapshot {id}: dataset is busy")));
        }
        let mut ids = vec![id.to_owned()];
        if recursive {
            let children = format!("{}/", snapshot.dataset);
            ids.extend(
                self.snapshots
                    .iter()
                    .filter(|(_, s)| s.dataset.starts_with(&children) && s.name == snapshot.name)
                    .map(|(i, _)| i.clone()),
            );
        }
        for id in ids {
            let Some(s) = self.snapshots.remove(&id) else { continue };
            if let Some(mountpoint) = self.datasets.get(&s.dataset).and_then(Mountpoint::path) {
                let _ = fs::remove_dir_all(mountpoint.join(".zfs").join("snapshot").join(&s.name));
            }
            self.deleted.push(id);
        }
        Ok(())
    }
}

fn snapshot_entry(id: &str, s: &Snapshot) -> Value {
    let txg = s.txg.to_string();
    json!({
        "id": id, "name": id, "pool": s.dataset.split('/').next().unwrap_or(&s.dataset),
        "type": "SNAPSHOT", "dataset": s.dataset, "snapshot_name": s.name, "createtxg": txg,
        "properties": {"createtxg": {"value": txg, "rawvalue": txg, "parsed": s.txg, "source": "NONE"}},
        "holds": {}, "retention": null,
    })
}

/// Copies `from` into `to` (made fresh, with `from`'s permissions):
/// directories, files (with their permissions and modification times) and
/// symlinks as links; `.zfs` is left out at every level, and the directories
/// in `mounts` (other datasets' mountpoints) are copied as empty directories.
fn copy_tree(from: &Path, to: &Path, mounts: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    copy_contents(from, to, mounts)
}

fn copy_contents(from: &Path, to: &Path, mounts: &[PathBuf]) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == ".zfs" {
            continue;
        }
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if mounts.contains(&source) {
            // What ZFS shows of the parent under a mount: the directory the
            // mount hides, here empty and with default permissions.
            fs::create_dir(&target)?;
        } else if meta.is_dir() {
            fs::create_dir(&target)?;
            copy_contents(&source, &target, mounts)?;
            fs::set_permissions(&target, meta.permissions())?;
        } else if meta.is_file() {
            fs::copy(&source, &target)?;
            fs::File::options().write(true).open(&target)?.set_modified(meta.modified()?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_middleware_operators() {
        let entry = json!({"id": "tank/a@orch-1", "dataset": "tank/a", "snapshot_name": "orch-1"});
        assert!(matches_filters(&entry, &json!([["dataset", "=", "tank/a"], ["snapshot_name", "^", "orch-"]])));
        assert!(!matches_filters(&entry, &json!([["dataset", "=", "tank/b"]])));
        assert!(matches_filters(&entry, &json!([["id", "in", ["x", "tank/a@orch-1"]]])));
        assert!(matches_filters(&entry, &json!([])));
        let filters = query_filters("id__%5E=tank%2Fdata%2F&extra.flat=true&limit=5&dataset=tank/a");
        assert_eq!(filters, json!([["id", "^", "tank/data/"], ["dataset", "=", "tank/a"]]));
        assert!(matches_filters(&json!({"id": "tank/data/x"}), &filters.as_array().unwrap()[..1].into()));
    }

    #[test]
    fn copies_leave_out_zfs() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::create_dir_all(src.join(".zfs/snapshot/old")).unwrap();
        fs::write(src.join("sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        fs::create_dir_all(src.join("child/inside")).unwrap();
        copy_tree(&src, &src.join(".zfs/snapshot/new"), &[src.join("child")]).unwrap();
        let copy = src.join(".zfs/snapshot/new");
        assert_eq!(fs::read(copy.join("sub/f")).unwrap(), b"x");
        assert_eq!(fs::read_link(copy.join("link")).unwrap(), Path::new("sub/f"));
        assert!(!copy.join(".zfs").exists());
        assert!(copy.join("child").is_dir() && !copy.join("child/inside").exists(), "a mount inside is left empty");
    }
}
