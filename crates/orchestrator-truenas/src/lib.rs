//! The TrueNAS API client a TrueNAS dataset source builds on: the dataset's
//! mountpoint and its child datasets', and a snapshot per run taken, listed
//! and released.
//!
//! [`TrueNas::connect`] finds out which API the NAS speaks:
//!
//! 1. A WebSocket to `/api/current` (JSON-RPC 2.0, TrueNAS 25.04 and later):
//!    `auth.login_with_api_key`, then `system.version`.
//! 2. When that route does not exist (HTTP 404: TrueNAS 24.10), REST:
//!    `GET /api/v2.0/system/version` with `Authorization: Bearer <key>`.
//!
//! The version string (`TrueNAS-25.10.0`, `TrueNAS-SCALE-24.10.2`) picks the
//! snapshot methods: `pool.snapshot.*` from 25.10 (where `zfs.snapshot.*`
//! became private), `zfs.snapshot.*` before, and REST `/api/v2.0/zfs/snapshot`
//! on 24.10.
//!
//! The logic is plain synchronous Rust over a small [`Transport`] trait
//! (HTTP requests and text WebSockets under the NAS's base URL, the API key
//! held by the transport), so the same code runs inside the
//! `truenas-dataset` plugin (over the host's `http` capability, built for
//! `wasm32-wasip2` with `default-features = false`) and natively: the
//! `native` feature (default) adds [`NativeTransport`] over
//! `orchestrator-http` (hyper, tokio, rustls), which the tests use against
//! the fake TrueNAS.

mod children;
mod client;
mod error;
#[cfg(feature = "native")]
mod native;
mod rpc;
mod transport;
mod version;

pub use children::{ChildDataset, Mount};
pub use client::{Api, KEY_PLACEHOLDER, Snapshot, SnapshotMethods, TrueNas, snapshot_path};
pub use error::{ErrorKind, TrueNasError};
#[cfg(feature = "native")]
pub use native::{NativeSocket, NativeTransport, TrueNasConfig, json_string_inside};
#[cfg(feature = "native")]
pub use orchestrator_http::{Secret, Timeouts, TlsConfig};
pub use transport::{Socket, Transport, TransportError, TransportErrorKind};
pub use version::Version;
