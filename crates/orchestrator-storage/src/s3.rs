//! `s3://bucket/prefix` targets: AWS S3 and the services that speak its API
//! (Backblaze B2, Wasabi, Cloudflare R2, MinIO, Garage, Ceph), through
//! `object_store`'s S3 client.
//!
//! - An object up to one part (`part_size_mib`, 8 MiB) goes in one PUT,
//!   which S3 makes visible whole or not at all. A larger one is a multipart
//!   upload with `limits.upload_concurrency` parts in flight; it appears only when
//!   completed. Before the first part, a marker object
//!   (`.orchestrator-upload-…`, holding the object's name and the upload's id)
//!   is written beside it, so the next run ([`Storage::remove_debris`]) aborts
//!   an upload a killed run left behind, even on a service that cannot list
//!   them, and the parts stop being billed.
//! - The run lock is created with `If-None-Match: *` (AWS since 2024, R2,
//!   MinIO, Garage and others honour it: two runs cannot both create it). A
//!   service that ignores the header lets the later writer win; the lock's
//!   read-back (the run checks it holds its own lock before it writes) then
//!   stops the run that lost, but two runs starting within the same second
//!   can still both write. `docs/pipeline.md` says so.
//! - The client runs on a small runtime of its own: the [`Storage`] trait is
//!   blocking, and its callers may be on another runtime's threads.
//!   Requests are retried with backoff on connection errors, 5xx and 429
//!   (after waiting what `Retry-After` asks, up to a minute), for at most
//!   `retry_minutes`; then the operation fails, naming the object.

use crate::options::StorageOptions;
use crate::{MAX_SMALL, ObjectInfo, ObjectSink, SmallObject, Storage, StorageError};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The keys a `[sinks.NAME.storage]` table may hold for `s3://`.
const KEYS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "path_style",
    "storage_class",
    "ca_file",
    "part_size_mib",
    "timeout_seconds",
    "retry_minutes",
];

/// Environment variables an `s3://` target falls back to when its table
/// names no credentials, as restic and duplicity read them.
pub const ENVIRONMENT: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Marker objects of multipart uploads in flight.
const UPLOAD_MARKER: &str = ".orchestrator-upload-";

/// S3's smallest part but the last.
const MIN_PART_MIB: u64 = 5;

/// Chunks of a response read ahead of the reader (reqwest's chunks are
/// tens of KiB: a few MiB at most).
const READ_AHEAD: usize = 64;

/// How often a read cut mid-object resumes before it fails.
const RESUMES: u32 = 3;

/// A bucket (and a prefix in it) on an S3-compatible service.
pub struct S3Storage {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<AmazonS3>,
    /// The same bucket for streaming reads: no total timeout per request,
    /// a timeout per stalled read instead.
    reader: Arc<AmazonS3>,
    /// `s3://bucket` as the user wrote it, for messages.
    bucket: String,
    /// The key prefix every object name is under (no leading or trailing `/`).
    root: String,
    part_size: usize,
    concurrency: usize,
    attributes: Attributes,
    /// Values that must never appear in a message (the credentials).
    secrets: Vec<String>,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage").field("bucket", &self.inner.bucket).field("root", &self.inner.root).finish()
    }
}

/// The bucket and the key prefix of an `s3://` URL.
fn parse_url(url: &str) -> Result<(String, String), StorageError> {
    let bad = |why: &str| StorageError::Config(format!("target `{url}`: {why} (expected s3://bucket[/prefix])"));
    let rest = url.strip_prefix("s3://").ok_or_else(|| bad("not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(bad("a bucket name of 3-63 lowercase letters, digits, `-` and `.`"));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.split('/').any(|c| c.is_empty() || c == "." || c == "..") && !prefix.is_empty() {
        return Err(bad("a prefix of plain names without `//`, `.` or `..`"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Whether `endpoint` may be plain http: only to this machine, where no one
/// can read the traffic on the way.
fn check_endpoint(endpoint: &str) -> Result<bool, StorageError> {
    let bad = |why: &str| StorageError::Config(format!("storage.endpoint `{endpoint}`: {why}"));
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| bad("expected https://host[:port]"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "https" => Ok(false),
        "http" => {
            let loopback =
                host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
            if loopback {
                Ok(true)
            } else {
                Err(bad("plain http is allowed only to this machine (localhost, 127.0.0.1, ::1): \
                     the requests carry the backups and sign with the credentials; use https"))
            }
        }
        _ => Err(bad("expected https://host[:port]")),
    }
}

/// The runtime every S3 request runs on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-client")
            .enable_all()
            .build()
            .expect("the S3 client's runtime starts")
    })
}

/// Run `future` on the S3 runtime and wait for it from this (blocking)
/// thread, whichever runtime, if any, this thread belongs to.
fn block<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Result<T, StorageError> {
    wait(runtime().spawn(future))
}

fn wait<T>(handle: JoinHandle<T>) -> Result<T, StorageError> {
    futures::executor::block_on(handle).map_err(|e| StorageError::Other(format!("an S3 request stopped: {e}")))
}

/// The longest `Retry-After` honoured; a service asking for more is retried
/// on the client's own backoff.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// reqwest, as object_store uses it, but a 429 or 503 with `Retry-After`
/// waits as long as the service asked before object_store's own backoff
/// retries it.
#[derive(Debug)]
struct PatientConnector;

impl HttpConnector for PatientConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Patient(ReqwestConnector::default().connect(options)?)))
    }
}

#[derive(Debug)]
struct Patient(HttpClient);

#[async_trait::async_trait]
impl HttpService for Patient {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = self.0.execute(request).await?;
        if matches!(response.status().as_u16(), 429 | 503)
            && let Some(wait) = retry_after(response.headers().get("retry-after").and_then(|v| v.to_str().ok()))
        {
            tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
        }
        Ok(response)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is left to the backoff).
fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A unique part of a marker's name.
fn marker_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{nanos:x}-{:x}-{:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl S3Storage {
    /// The storage of `url` with the endpoint, credentials and upload
    /// settings of `options`. Nothing is contacted yet.
    pub fn new(url: &str, options: &StorageOptions) -> Result<S3Storage, StorageError> {
        let (bucket, root) = parse_url(url)?;
        options.only(KEYS, "s3://")?;
        // TLS through rustls with ring, as the rest of the host (no C build);
        // a second call finds it installed.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let credential = |key: &str, env: &str| -> Result<Option<String>, StorageError> {
            match options.secret(key)? {
                Some(v) => Ok(Some(v)),
                None => Ok(options.environment.get(env).map(|v| v.expose().to_string())),
            }
        };
        let access_key = credential("access_key_id", "AWS_ACCESS_KEY_ID")?;
        let secret_key = credential("secret_access_key", "AWS_SECRET_ACCESS_KEY")?;
        let token = credential("session_token", "AWS_SESSION_TOKEN")?;
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            return Err(StorageError::Config(
                "storage: an s3:// target needs `access_key_id` and `secret_access_key` (as secrets), \
                 or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                    .into(),
            ));
        };

        let region = options.string("region", "a region name")?.unwrap_or_else(|| "us-east-1".into());
        let endpoint = options.string("endpoint", "https://host[:port]")?.map(|e| e.trim_end_matches('/').to_string());
        let allow_http = endpoint.as_deref().map(check_endpoint).transpose()?.unwrap_or(false);
        // AWS wants virtual-hosted requests; services on an endpoint of
        // their own (MinIO, Garage, Ceph) mostly want the bucket in the path.
        let path_style = options.boolean("path_style")?.unwrap_or(endpoint.is_some());
        let mut attributes = Attributes::new();
        if let Some(class) = options.string("storage_class", "a class name such as STANDARD_IA")? {
            attributes.insert(Attribute::StorageClass, class.into());
        }
        let part_mib = options.integer("part_size_mib")?.unwrap_or(8);
        if !(MIN_PART_MIB..=1024).contains(&part_mib) {
            return Err(StorageError::Config(format!(
                "storage.part_size_mib: {part_mib} is not between {MIN_PART_MIB} (S3's smallest part) and 1024"
            )));
        }
        let concurrency = options.upload_concurrency.unwrap_or(4).max(1);

        let timeout = Duration::from_secs(options.integer("timeout_seconds")?.unwrap_or(300));
        let mut client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            // Per request (a part: a slow uplink, 8 MiB in five minutes, is
            // 28 KB/s); reads have a timeout per stalled read instead.
            .with_timeout(timeout);
        if let Some(ca) = options.path("ca_file")? {
            let pem = std::fs::read(&ca)
                .map_err(|e| StorageError::Config(format!("storage.ca_file: cannot read {}: {e}", ca.display())))?;
            let certs = object_store::Certificate::from_pem_bundle(&pem).map_err(|e| {
                StorageError::Config(format!("storage.ca_file: {} is not PEM certificates: {e}", ca.display()))
            })?;
            for cert in certs {
                client = client.with_root_certificate(cert);
            }
        }
        let retry = RetryConfig {
            retry_timeout: Duration::from_secs(60 * options.integer("retry_minutes")?.unwrap_or(3)),
            ..RetryConfig::default()
        };

        let mut secrets = vec![access_key.clone(), secret_key.clone()];
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region(region)
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key)
            .with_virtual_hosted_style_request(!path_style)
            .with_client_options(client.clone())
            .with_http_connector(PatientConnector)
            .with_retry(retry);
        if let Some(token) = token {
            secrets.push(token.clone());
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let reading = client.with_timeout_disabled().with_read_timeout(timeout);
        let reader = builder.clone().with_client_options(reading).build();
        let store = builder.build().and_then(|store| Ok((store, reader?)));
        let (store, reader) = store.map_err(|e| StorageError::Config(format!("target `{url}`: {e}")))?;
        let inner = Inner {
            store: Arc::new(store),
            reader: Arc::new(reader),
            bucket,
            root,
            part_size: (part_mib << 20) as usize,
            concurrency: concurrency as usize,
            attributes,
            secrets,
        };
        Ok(S3Storage { inner: Arc::new(inner) })
    }
}

impl Inner {
    fn key(&self, name: &str) -> String {
        if self.root.is_empty() { name.to_string() } else { format!("{}/{name}", self.root) }
    }

    fn path(&self, name: &str) -> Result<Path, StorageError> {
        Path::parse(self.key(name))
            .map_err(|e| StorageError::PermissionDenied(format!("object name {name:?} cannot be an S3 key: {e}")))
    }

    fn locate(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(name))
    }

    /// The storage case of a failed request, naming what was being done to
    /// which object, with the credentials cut out of the service's answer.
    fn error(&self, doing: &str, name: &str, e: object_store::Error) -> StorageError {
        let message = orchestrator_config::redact(
            &format!("{doing} {}: {e}", self.locate(name)),
            self.secrets.iter().map(String::as_str),
        );
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound(message),
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                StorageError::PermissionDenied(message)
            }
            object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
                StorageError::Unsupported(message)
            }
            _ => StorageError::Io(message),
        }
    }

    /// Every object under `prefix`, host objects included.
    fn list_all(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let path = self.path(prefix)?;
        let store = self.store.clone();
        let listed = block(async move {
            let mut objects = Vec::new();
            let mut stream = store.list(Some(&path));
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                objects.push((meta.location.to_string(), meta.size));
            }
            Ok::<_, object_store::Error>(objects)
        })?
        .map_err(|e| self.error("listing", prefix, e))?;
        let under = format!("{}/", self.key(prefix));
        Ok(listed
            .into_iter()
            .filter_map(|(key, size)| Some(ObjectInfo { name: key.strip_prefix(&under)?.to_string(), size }))
            .collect())
    }

    fn put_whole(&self, name: &str, data: Vec<u8>, mode: PutMode) -> Result<(), object_store::Error> {
        let (store, path) = (self.store.clone(), self.path(name).map_err(generic)?);
        let opts = PutOptions { mode, attributes: self.attributes.clone(), ..PutOptions::default() };
        block(async move { store.put_opts(&path, PutPayload::from(data), opts).await.map(|_| ()) }).map_err(generic)?
    }
}

/// A storage error carried as a request error, for paths that end in one.
fn generic(e: StorageError) -> object_store::Error {
    object_store::Error::Generic { store: "S3", source: e.to_string().into() }
}

/// An object being written: one PUT, or a multipart upload once it outgrows
/// a part.
struct S3Sink {
    inner: Arc<Inner>,
    name: String,
    buffer: Vec<u8>,
    upload: Option<Upload>,
}

struct Upload {
    path: Path,
    id: String,
    /// The marker object's name, removed once the upload is completed or
    /// aborted.
    marker: String,
    in_flight: VecDeque<JoinHandle<Result<(usize, PartId), object_store::Error>>>,
    parts: Vec<(usize, PartId)>,
    next: usize,
}

impl S3Sink {
    /// Start the multipart upload, marker first.
    fn begin(&mut self) -> Result<(), StorageError> {
        let inner = &self.inner;
        let path = inner.path(&self.name)?;
        let marker = crate::beside(&self.name, &format!("{UPLOAD_MARKER}{}", marker_id()));
        let (store, p) = (inner.store.clone(), path.clone());
        let opts = PutMultipartOptions { attributes: inner.attributes.clone(), ..Default::default() };
        let id = block(async move { store.create_multipart_opts(&p, opts).await })?
            .map_err(|e| inner.error("starting the upload of", &self.name, e))?;
        let record = format!("{}\n{id}\n", self.name);
        if let Err(e) = inner.put_whole(&marker, record.into_bytes(), PutMode::Overwrite) {
            let (store, p, i) = (inner.store.clone(), path.clone(), id.clone());
            let _ = block(async move { store.abort_multipart(&p, &i).await });
            return Err(inner.error("writing the upload marker", &marker, e));
        }
        self.upload = Some(Upload { path, id, marker, in_flight: VecDeque::new(), parts: Vec::new(), next: 0 });
        Ok(())
    }

    /// Send the buffer as the next part, waiting while as many parts as
    /// allowed are in flight (memory: a part per slot, plus the buffer).
    fn send_part(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            self.begin()?;
        }
        let part_size = self.inner.part_size;
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(part_size));
        let upload = self.upload.as_mut().expect("begun");
        let (store, path, id, index) = (self.inner.store.clone(), upload.path.clone(), upload.id.clone(), upload.next);
        upload.next += 1;
        upload.in_flight.push_back(runtime().spawn(async move {
            let part = store.put_part(&path, &id, index, PutPayload::from(data)).await?;
            Ok((index, part))
        }));
        while self.upload.as_ref().is_some_and(|u| u.in_flight.len() >= self.inner.concurrency) {
            self.finish_one()?;
        }
        Ok(())
    }

    /// Wait for the oldest part in flight.
    fn finish_one(&mut self) -> Result<(), StorageError> {
        let upload = self.upload.as_mut().expect("begun");
        let Some(handle) = upload.in_flight.pop_front() else { return Ok(()) };
        let part = wait(handle)?.map_err(|e| self.inner.error("uploading a part of", &self.name, e))?;
        upload.parts.push(part);
        Ok(())
    }

    fn complete(&mut self) -> Result<(), StorageError> {
        if !self.buffer.is_empty() {
            self.send_part()?;
        }
        while self.upload.as_ref().is_some_and(|u| !u.in_flight.is_empty()) {
            self.finish_one()?;
        }
        let mut upload = self.upload.take().expect("begun");
        upload.parts.sort_by_key(|(index, _)| *index);
        let parts = upload.parts.drain(..).map(|(_, part)| part).collect();
        let (store, path, id) = (self.inner.store.clone(), upload.path.clone(), upload.id.clone());
        let done = block(async move { store.complete_multipart(&path, &id, parts).await });
        let done = match done {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.inner.error("completing the upload of", &self.name, e)),
            Err(e) => Err(e),
        };
        if done.is_err() {
            self.upload = Some(upload);
            return done;
        }
        // The object is whole; a marker left here only costs the next run an
        // abort that finds nothing.
        let _ = self.inner.path(&upload.marker).map(|marker| {
            let store = self.inner.store.clone();
            block(async move { store.delete(&marker).await })
        });
        Ok(())
    }
}

impl ObjectSink for S3Sink {
    fn write(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        let part_size = self.inner.part_size;
        while !data.is_empty() {
            let room = part_size - self.buffer.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buffer.extend_from_slice(now);
            data = later;
            if self.buffer.len() == part_size {
                self.send_part()?;
            }
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.upload.is_some() {
            return self.complete();
        }
        let data = std::mem::take(&mut self.buffer);
        self.inner
            .put_whole(&self.name, data, PutMode::Overwrite)
            .map_err(|e| self.inner.error("writing", &self.name, e))
    }
}

impl Drop for S3Sink {
    /// An upload not completed is aborted in the background: its parts are
    /// never visible, and if this process ends first the marker lets the
    /// next run abort it.
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            let store = self.inner.store.clone();
            let marker = self.inner.path(&upload.marker).ok();
            runtime().spawn(async move {
                for part in upload.in_flight {
                    part.abort();
                }
                if store.abort_multipart(&upload.path, &upload.id).await.is_ok()
                    && let Some(marker) = marker
                {
                    let _ = store.delete(&marker).await;
                }
            });
        }
    }
}

/// An object's bytes as they arrive, a few chunks read ahead.
struct S3Reader {
    chunks: std::sync::Mutex<tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>>,
    current: bytes::Bytes,
    pump: JoinHandle<()>,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            let chunks = self.chunks.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            match futures::executor::block_on(chunks.recv()) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(message)) => return Err(std::io::Error::other(message)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Drop for S3Reader {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl Storage for S3Storage {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(self.inner.list_all(prefix)?.into_iter().filter(|o| !crate::is_reserved(&o.name)).collect())
    }

    fn put(&self, name: &str) -> Result<Box<dyn ObjectSink>, StorageError> {
        self.inner.path(name)?;
        Ok(Box::new(S3Sink { inner: self.inner.clone(), name: name.to_string(), buffer: Vec::new(), upload: None }))
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, StorageError> {
        let inner = &self.inner;
        let (store, path) = (inner.reader.clone(), inner.path(name)?);
        let first = {
            let (store, path) = (store.clone(), path.clone());
            block(async move { store.get(&path).await })?.map_err(|e| inner.error("reading", name, e))?
        };
        // One streaming request per object (no total timeout: a volume read
        // slowly while its files are restored is fine; a stalled read is
        // not). Cut mid-way, it resumes from where it was, on the same
        // version of the object (If-Match), a few times.
        let (size, etag) = (first.meta.size, first.meta.e_tag.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let reader = Arc::clone(inner);
        let name_owned = name.to_string();
        let pump = runtime().spawn(async move {
            let mut result = Ok(first);
            let (mut offset, mut resumed) = (0u64, 0);
            let failure = loop {
                let error = match result {
                    Ok(got) => {
                        let mut stream = got.into_stream();
                        let mut cut = None;
                        while let Some(chunk) = stream.next().await {
                            match chunk {
                                Ok(bytes) => {
                                    offset += bytes.len() as u64;
                                    if tx.send(Ok(bytes)).await.is_err() {
                                        return; // the reader is gone
                                    }
                                }
                                Err(e) => {
                                    cut = Some(e);
                                    break;
                                }
                            }
                        }
                        match cut {
                            None if offset == size => return,
                            None => object_store::Error::Generic {
                                store: "S3",
                                source: format!("the object ended after {offset} of {size} bytes").into(),
                            },
                            Some(e) => e,
                        }
                    }
                    Err(e) => e,
                };
                if resumed == RESUMES || offset >= size {
                    break error;
                }
                resumed += 1;
                tracing::warn!("reading {}: {error}; resuming at byte {offset}", reader.locate(&name_owned));
                let options = GetOptions {
                    range: Some(GetRange::Offset(offset)),
                    if_match: etag.clone(),
                    ..GetOptions::default()
                };
                result = store.get_opts(&path, options).await;
            };
            let _ = tx.send(Err(reader.error("reading", &name_owned, failure).to_string())).await;
        });
        Ok(Box::new(S3Reader { chunks: std::sync::Mutex::new(rx), current: bytes::Bytes::new(), pump }))
    }

    fn delete(&self, name: &str) -> Result<(), StorageError> {
        let inner = &self.inner;
        let (store, path) = (inner.store.clone(), inner.path(name)?);
        match block(async move { store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(inner.error("deleting", name, e)),
        }
    }

    fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, StorageError> {
        match self.inner.put_whole(name, data.to_vec(), PutMode::Create) {
            Ok(()) => {}
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                return Ok(false);
            }
            Err(e) => return Err(self.inner.error("creating", name, e)),
        }
        // A service that ignores If-None-Match overwrote whatever was there:
        // if another writer's bytes are there now, it won.
        Ok(self.read_small(name)?.is_some_and(|(held, _)| held == data))
    }

    fn read_small(&self, name: &str) -> Result<Option<SmallObject>, StorageError> {
        let inner = &self.inner;
        let (store, path) = (inner.store.clone(), inner.path(name)?);
        let got = block(async move {
            let result = store.get(&path).await?;
            let (size, modified) = (result.meta.size, result.meta.last_modified.timestamp());
            if size > MAX_SMALL {
                return Ok(Err(size));
            }
            Ok(Ok((result.bytes().await?.to_vec(), modified)))
        })?;
        match got {
            Ok(Ok((data, modified))) => Ok(Some((data, Some(modified)))),
            Ok(Err(size)) => Err(crate::too_large(inner.locate(name), size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(inner.error("reading", name, e)),
        }
    }

    fn remove_debris(&self, prefix: &str) -> Result<u64, StorageError> {
        let inner = &self.inner;
        let mut aborted = 0;
        for object in inner.list_all(prefix)? {
            if !crate::file_name(&object.name).starts_with(UPLOAD_MARKER) {
                continue;
            }
            let marker = format!("{prefix}/{}", object.name);
            let Some((record, _)) = self.read_small(&marker)? else { continue };
            let record = String::from_utf8_lossy(&record);
            let mut lines = record.lines();
            if let (Some(name), Some(id)) = (lines.next(), lines.next()) {
                let (store, path, id) = (inner.store.clone(), inner.path(name)?, id.to_string());
                match block(async move { store.abort_multipart(&path, &id).await })? {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(inner.error("aborting the interrupted upload of", name, e)),
                }
            }
            self.delete(&marker)?;
            aborted += 1;
        }
        Ok(aborted)
    }

    fn locate(&self, name: &str) -> String {
        self.inner.locate(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_url("s3://backups").unwrap(), ("backups".into(), "".into()));
        assert_eq!(parse_url("s3://backups/").unwrap(), ("backups".into(), "".into()));
        assert_eq!(parse_url("s3://my.bucket-1/home/nas").unwrap(), ("my.bucket-1".into(), "home/nas".into()));
        for bad in ["s3://", "s3://B", "s3://ab", "s3://UPPER/x", "s3://b_x/y", "s3://bkt/a//b", "s3://bkt/a/../b"] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("expected s3://bucket[/prefix]"), "{bad}: {e}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some(" 120 ")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(!check_endpoint("https://s3.eu-central-003.backblazeb2.com").unwrap());
        assert!(check_endpoint("http://127.0.0.1:9000").unwrap());
        assert!(check_endpoint("http://localhost:9000/").unwrap());
        assert!(check_endpoint("http://[::1]:9000").unwrap());
        for bad in ["http://minio.lan:9000", "http://192.168.1.5", "ftp://x", "s3.amazonaws.com", "https://"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        let e = check_endpoint("http://minio.lan:9000").unwrap_err().to_string();
        assert!(e.contains("use https"), "{e}");
    }

    #[test]
    fn credentials_come_from_the_table_or_the_environment() {
        let mut options = StorageOptions::default();
        let e = S3Storage::new("s3://bucket/x", &options).unwrap_err().to_string();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
        for (k, v) in [("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")] {
            options.environment.insert(k.into(), crate::SecretValue::new(v.into()));
        }
        let s3 = S3Storage::new("s3://bucket/x", &options).unwrap();
        assert_eq!(s3.locate("src/a"), "s3://bucket/x/src/a");
        assert!(!format!("{s3:?}").contains("wJalrXUtnFEMI"));
        // Written in the file, a credential is refused.
        options.values.insert("secret_access_key".into(), "wJalrXUtnFEMI".into());
        let e = S3Storage::new("s3://bucket/x", &options).unwrap_err().to_string();
        assert!(e.contains("must be a secret") && !e.contains("wJalrXUtnFEMI"), "{e}");
    }
}
