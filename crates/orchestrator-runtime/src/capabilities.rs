//! Host capabilities: what plugins can ask the host to do, each checked
//! against the plugin's grants. One module per capability holds its state and
//! policy in plain Rust; the `Host` trait impls are thin glue over it.
//!
//! What each is: what plugins may ask the host: `log` (log lines, progress and
//! stderr, with secret values redacted), `secrets` (reveal only with a grant),
//! `filesystem` (read-only over granted trees through cap-std and `*at`
//! syscalls: lstat metadata, byte-exact names, never a symlink out of the
//! grant), `storage` (objects under the source's place in the target; written
//! to a temporary name and renamed, with the SHA-1 of the stored bytes; since
//! WIT 0.1.1 `put-encoded`/`get-decoded` let the host gzip and OpenPGP-seal
//! objects natively on an encoder thread (`orchestrator_storage::encode`), with
//! keys the sink names by config key and the host looks up
//! (`orchestrator_storage::keys`; the passphrase's S2K salt is kept per source
//! in the cache as `.orchestrator-s2k-salt`, so every run of a chain seals with
//! one salt and a restore derives the key once), so the sink never holds a key
//! and never compresses or encrypts inside WebAssembly), `cache` (the same
//! object store over `<cache_dir>/<sink>-<hash of target>/<source>/`, default
//! `$XDG_CACHE_HOME/orchestrator/<pipeline name>`), `scratch` (anonymous
//! temporary files, gone with the handle), `rsync` (librsync signatures hashed
//! natively with fast_rsync's SIMD MD4, on a thread of its own for large
//! files), `imap` (over `orchestrator-imap`: `connect` only to a `host:port`
//! the plugin was granted, the password looked up by the secret's config key
//! like the storage keys, a `ca-file` read only when it is a value of the
//! plugin's configuration, the client held in the resource table; auth and TLS
//! failures map to `permission-denied`, unreachable to `transient`, a vanished
//! folder to `not-found`), `http` (since 0.1.4, over `orchestrator-http`: a
//! client per base URL the plugin was granted by an `http` want, TLS options
//! and timeouts, the bearer token resolved from the plugin's secrets by config
//! key; every status is returned to the plugin; text WebSockets, with
//! `send-with-secret` putting the token in place of a placeholder for APIs that
//! log in by message, such as TrueNAS's JSON-RPC), `sftp` (since 0.1.4, over
//! `orchestrator-sftp` in `spawn_blocking`: a session to a `host:port` granted
//! by a `connect` want, key file, passphrase by secret key, known_hosts
//! checked; lstat, read-dir, read-link, open and read). Files a plugin names
//! to the host (SFTP key and known_hosts, IMAP and HTTP CA files) must be
//! values of its own configuration.

pub mod cache;
pub mod filesystem;
pub mod http;
pub mod imap;
pub mod log;
pub mod rsync;
pub mod scratch;
pub mod secrets;
pub mod sftp;
pub mod storage;
