//! The WebAssembly runtime: the only crate that knows wasmtime.
//!
//! - [`Runtime`]: one engine (trimmed features, epoch interruption), one
//!   linker per world, compiled components cached on disk.
//! - [`SourceInstance`] and [`SinkInstance`]: a fresh store per plugin
//!   instance, built once with its final [`Grants`] and [`Limits`]; typed
//!   calls with a time limit, and typed handles ([`Session`], [`Content`],
//!   [`Writer`], [`Backup`], [`Reader`]) for the resources plugins hand out.
//! - [`grants`]: what a plugin's `validate` wants against what the pipeline
//!   grants.
//! - `capabilities`: the host interfaces plugins import, each a plain-Rust
//!   context and thin glue.
//!
//! **Architecture invariant:** nothing outside this crate depends on wasmtime;
//! the WIT types other crates need are re-exported as plain data in
//! [`types`].

mod bindings;
mod capabilities;
mod engine;
pub mod grants;
mod instance;
mod state;

pub use capabilities::log::LogCtx;
pub use engine::{LoadedPlugin, Runtime, World};
pub use grants::Granted;
pub use instance::{Backup, Content, Reader, RuntimeError, Session, SinkInstance, SourceInstance, Writer};
pub use state::{Grants, Limits};

/// The plain data of the plugin API (WIT records, variants and enums), as
/// Rust types with no wasmtime in them.
pub mod types {
    pub use crate::bindings::sink::exports::orchestrator::plugin::sink::{
        BackupContext, BackupSet, Chain, ContentStatus, ReadRequest, SetKind, SourceStatus, VerifyReport,
    };
    pub use crate::bindings::source::exports::orchestrator::plugin::source::RunContext;
    pub use crate::bindings::{Entry, EntryKind, Metadata, Outcome, PluginError, PluginInfo, Want};
}
