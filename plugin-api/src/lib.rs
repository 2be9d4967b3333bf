//! Write orchestrator plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` from a
//! `cdylib` crate. It implements one trait and calls one export macro:
//!
//! ```ignore
//! use plugin_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { path: String }
//!
//! struct Hello;
//!
//! impl Source for Hello {
//!     type Config = Config;
//!     type Session = HelloSession;
//!     fn info() -> PluginInfo { plugin_info!("hello", "Says hello") }
//!     fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
//!         Ok(vec![Want::ReadPath(config.path.clone())])
//!     }
//!     fn open(config: Config, _context: RunContext) -> Result<HelloSession, PluginError> { todo!() }
//! }
//! # struct HelloSession;
//! # impl Session for HelloSession { /* … */ }
//! export_source!(Hello);
//! ```
//!
//! The traits are plain Rust and the logic behind them can be tested natively
//! with `cargo test`; only the export macro and the host imports need the
//! WebAssembly target. The WIT package in `wit/` is the contract with the host
//! (`orchestrator:plugin@0.1.4`).
#![warn(missing_docs)]

pub mod cache;
mod config;
pub mod fs;
pub mod http;
pub mod imap;
pub mod log;
pub mod rsync;
pub mod scratch;
pub mod sftp;
mod sink;
mod source;
pub mod storage;

pub use config::{Secret, parse_config};
pub use sink::{Backup, Reader, Sink};
pub use source::{Content, ReadChunk, Session, Source, SourceWriter};

/// Generated bindings; plugin code uses the re-exports instead.
#[doc(hidden)]
pub mod bindings {
    /// Bindings of the `source-plugin` world.
    pub mod source {
        wit_bindgen::generate!({
            path: "wit",
            world: "source-plugin",
            pub_export_macro: true,
            export_macro_name: "export_source_world",
            default_bindings_module: "plugin_sdk::bindings::source",
            additional_derives: [PartialEq],
        });
    }
    /// Bindings of the `sink-plugin` world, sharing the common interfaces with
    /// the source world so that one set of types serves both.
    pub mod sink {
        wit_bindgen::generate!({
            path: "wit",
            world: "sink-plugin",
            pub_export_macro: true,
            export_macro_name: "export_sink_world",
            default_bindings_module: "plugin_sdk::bindings::sink",
            additional_derives: [PartialEq],
            with: {
                "orchestrator:plugin/types@0.1.4": crate::bindings::source::orchestrator::plugin::types,
                "orchestrator:plugin/log@0.1.4": crate::bindings::source::orchestrator::plugin::log,
                "orchestrator:plugin/progress@0.1.4": crate::bindings::source::orchestrator::plugin::progress,
                "orchestrator:plugin/secrets@0.1.4": crate::bindings::source::orchestrator::plugin::secrets,
            },
        });
    }
}

use bindings::source::orchestrator::plugin::types;

pub use bindings::sink::exports::orchestrator::plugin::sink::{
    BackupContext, BackupSet, Chain, ContentStatus, ReadRequest, SetKind, SourceStatus, VerifyReport,
};
pub use bindings::source::exports::orchestrator::plugin::source::RunContext;
pub use types::{Entry, EntryKind, Metadata, Outcome, PluginError, PluginInfo, Want};

#[doc(hidden)]
pub mod __private {
    pub use crate::sink::SinkShim;
    pub use crate::source::SourceShim;
}

/// The version of the WIT package this SDK speaks.
pub const API_VERSION: &str = "0.1.4";

/// What a plugin module usually imports.
pub mod prelude {
    pub use crate::{
        Backup, BackupContext, BackupSet, Chain, Content, ContentStatus, Entry, EntryKind, Metadata, Outcome,
        PluginError, PluginInfo, ReadRequest, Reader, RunContext, Secret, Session, SetKind, Sink, Source, SourceStatus,
        SourceWriter, VerifyReport, Want, export_sink, export_source, plugin_info,
    };
}

/// A [`PluginInfo`] with the calling crate's version.
#[macro_export]
macro_rules! plugin_info {
    ($name:expr, $description:expr) => {
        $crate::PluginInfo {
            name: ::std::string::String::from($name),
            version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
            description: ::std::string::String::from($description),
        }
    };
}

impl PluginError {
    /// The message without the case, for sentences that name the case
    /// themselves (wit-bindgen's `Display` shows the Debug form).
    pub fn message(&self) -> &str {
        match self {
            PluginError::Config(m)
            | PluginError::PermissionDenied(m)
            | PluginError::NotFound(m)
            | PluginError::Transient(m)
            | PluginError::Io(m)
            | PluginError::Unsupported(m)
            | PluginError::Corrupt(m)
            | PluginError::Other(m) => m,
        }
    }

    /// An [`std::io::Error`] carrying this error, for code behind `std::io::Read`
    /// that must keep the plugin's own case.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The plugin error an [`std::io::Error`] stands for: the one it carries, or
    /// an `io` error with its message.
    pub fn from_io(err: std::io::Error) -> PluginError {
        if err.get_ref().is_some_and(|e| e.is::<PluginError>()) {
            match err.into_inner().map(|e| e.downcast::<PluginError>()) {
                Some(Ok(e)) => *e,
                _ => PluginError::Io("unknown i/o error".into()),
            }
        } else {
            PluginError::Io(err.to_string())
        }
    }
}

/// Read from `reader` until `max` bytes are read or the end is reached.
///
/// The host asks for large chunks; a single `read` on a WASI file returns at
/// most 64 KiB, so filling in a loop keeps the number of boundary crossings low.
pub fn fill_chunk(reader: &mut dyn std::io::Read, max: usize) -> Result<Vec<u8>, PluginError> {
    fill_with(|buf| reader.read(buf), max).map_err(PluginError::from_io)
}

/// Fill a buffer of up to `max` bytes from `read` until it returns 0.
///
/// The buffer starts small and grows fourfold as it fills, so a 1 KiB file
/// does not cost zeroing a 4 MiB buffer (ten thousand small files would
/// spend more time in `memset` than in reading), and a large one costs a few
/// reallocations.
pub fn fill_with(mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>, max: usize) -> std::io::Result<Vec<u8>> {
    const FIRST: usize = 16 << 10;
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled >= max {
                break;
            }
            let grow = if buf.is_empty() { FIRST } else { buf.len() * 3 };
            buf.resize((filled + grow).min(max), 0);
        }
        match read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Largest chunk the SDK hands across the boundary in one call.
pub const MAX_CHUNK: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_the_plugin_error_they_carry() {
        let e = PluginError::NotFound("x".into()).into_io();
        assert!(matches!(PluginError::from_io(e), PluginError::NotFound(m) if m == "x"));
        let e = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "nope");
        assert!(matches!(PluginError::from_io(e), PluginError::Io(m) if m == "nope"));
    }

    #[test]
    fn fill_chunk_reads_across_short_reads() {
        struct Short(Vec<u8>);
        impl std::io::Read for Short {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut r = Short((0..10).collect());
        assert_eq!(fill_chunk(&mut r, 8).unwrap(), (0..8).collect::<Vec<u8>>());
        assert_eq!(fill_chunk(&mut r, 8).unwrap(), vec![8, 9]);
        assert!(fill_chunk(&mut r, 8).unwrap().is_empty());
    }
}
