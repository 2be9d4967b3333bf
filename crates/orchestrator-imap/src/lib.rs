//! The native IMAP client under the host's IMAP capability.
//!
//! A backup reads an account without changing it: folders are opened with
//! EXAMINE and bodies fetched with `BODY.PEEK[]`, so flags (`\Seen`) stay as
//! the user left them. A restore writes with CREATE and APPEND, flags and
//! internal dates included.
//!
//! TLS is rustls with the ring provider (no C toolchain beyond `cc`), trusting
//! the system's roots or a configured CA file. Plain IMAP is only allowed to a
//! loopback address. The password is never part of a string the IMAP library
//! sees, so it cannot appear in its logs or in an error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orchestrator_imap::ImapError> {
//! use orchestrator_imap::{Client, Password, Security, ServerConfig};
//! let config = ServerConfig::new("imap.example.org", Security::Tls, "alice", Password::new("secret"));
//! let mut client = Client::connect(&config).await?;
//! for folder in client.list_folders().await?.into_iter().filter(|f| f.selectable) {
//!     let status = client.examine(&folder.raw).await?;
//!     let metas = client.fetch_meta(1..=status.uid_next.saturating_sub(1)).await?;
//!     let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
//!     for chunk in uids.chunks(50) {
//!         let _bodies = client.fetch_bodies(chunk).await?;
//!     }
//! }
//! client.logout().await
//! # }
//! ```
//!
//! the native IMAP client under the host's `imap` capability: async-imap over
//! tokio, TLS by rustls with the ring provider (implicit TLS, STARTTLS, or
//! plain only to a loopback address), system roots or a `ca_file`. Backups read
//! without changing the account (EXAMINE, `BODY.PEEK[]`); restores CREATE and
//! APPEND with flags and internal date. Data commands are run by hand over
//! async-imap's connection because its helpers drop a tagged `NO`. The login
//! hands async-imap a placeholder that the transport swaps for the password on
//! the way out, so the password is in none of its (trace) logs or errors.
//! Modules: `transport` (TCP, TLS, idle timeout, the swap), `connect`
//! (greeting, CAPABILITY, STARTTLS, LOGIN), `client` (operations), `utf7`
//! (folder names), `dates` (INTERNALDATE), `uidset`, `error` (kinds the host
//! maps). Everything but `utf7` and `dates` is the default `native` feature:
//! the imap plugin builds the crate without it for wasm32-wasip2, to encode the
//! folders a restore creates with the same codec.

#[cfg(feature = "native")]
mod client;
#[cfg(feature = "native")]
mod config;
#[cfg(feature = "native")]
mod connect;
pub mod dates;
#[cfg(feature = "native")]
mod error;
#[cfg(feature = "native")]
mod transport;
#[cfg(feature = "native")]
mod uidset;
pub mod utf7;

#[cfg(feature = "native")]
pub use client::{Client, Folder, FolderStatus, MessageMeta};
#[cfg(feature = "native")]
pub use config::{Password, Security, ServerConfig};
#[cfg(feature = "native")]
pub use error::{ErrorKind, ImapError};
#[cfg(feature = "native")]
pub use uidset::UidSet;
