//! The TrueNAS API client a TrueNAS dataset source builds on: the dataset's
//! mountpoint, and a snapshot per run taken, listed and released.
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
//! on 24.10. Connection, TLS and timeouts are `orchestrator-http`'s.

mod client;
mod error;
mod version;

pub use client::{Api, Snapshot, SnapshotMethods, TrueNas, TrueNasConfig};
pub use error::{ErrorKind, TrueNasError};
pub use orchestrator_http::{Secret, Timeouts, TlsConfig};
pub use version::Version;
