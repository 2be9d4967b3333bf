//! The one place where the WIT package becomes Rust: host-side bindings of
//! the source and sink worlds. The sink world reuses the source world's shared
//! interfaces so both speak the same types.

/// Bindings of the `source-plugin` world.
pub mod source {
    wasmtime::component::bindgen!({
        path: "../../plugin-api/wit",
        world: "source-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "orchestrator:plugin/filesystem.listing": crate::capabilities::filesystem::Listing,
            "orchestrator:plugin/filesystem.file": crate::capabilities::filesystem::OpenFile,
            "orchestrator:plugin/imap.connection": crate::capabilities::imap::Connection,
            "orchestrator:plugin/http.client": crate::capabilities::http::Client,
            "orchestrator:plugin/http.websocket": crate::capabilities::http::WebSocket,
            "orchestrator:plugin/sftp.session": crate::capabilities::sftp::Session,
            "orchestrator:plugin/sftp.remote-file": crate::capabilities::sftp::RemoteFile,
        },
    });
}

/// Bindings of the `sink-plugin` world.
pub mod sink {
    wasmtime::component::bindgen!({
        path: "../../plugin-api/wit",
        world: "sink-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "orchestrator:plugin/types": super::source::orchestrator::plugin::types,
            "orchestrator:plugin/log": super::source::orchestrator::plugin::log,
            "orchestrator:plugin/progress": super::source::orchestrator::plugin::progress,
            "orchestrator:plugin/secrets": super::source::orchestrator::plugin::secrets,
            "orchestrator:plugin/storage.object-writer": orchestrator_storage::ObjectWriter,
            "orchestrator:plugin/storage.object-reader": orchestrator_storage::ObjectReader,
            "orchestrator:plugin/scratch.scratch-file": crate::capabilities::scratch::ScratchFile,
            "orchestrator:plugin/rsync.signer": crate::capabilities::rsync::Signer,
        },
    });
}

pub use source::orchestrator::plugin::types::{Entry, EntryKind, Metadata, Outcome, PluginError, PluginInfo, Want};

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Socket => "socket",
        })
    }
}

impl PluginError {
    /// The message without the case, for sentences that name the case themselves.
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

    /// A short description of the case, for people.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Config(_) => "configuration error",
            PluginError::PermissionDenied(_) => "permission denied",
            PluginError::NotFound(_) => "not found",
            PluginError::Transient(_) => "temporary failure",
            PluginError::Io(_) => "i/o error",
            PluginError::Unsupported(_) => "not supported",
            PluginError::Corrupt(_) => "corrupt data",
            PluginError::Other(_) => "error",
        }
    }

    /// `kind: message`, the form used in logs and errors.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.kind(), self.message())
    }

    /// The same case with its message passed through `f`.
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> PluginError {
        match self {
            PluginError::Config(m) => PluginError::Config(f(&m)),
            PluginError::PermissionDenied(m) => PluginError::PermissionDenied(f(&m)),
            PluginError::NotFound(m) => PluginError::NotFound(f(&m)),
            PluginError::Transient(m) => PluginError::Transient(f(&m)),
            PluginError::Io(m) => PluginError::Io(f(&m)),
            PluginError::Unsupported(m) => PluginError::Unsupported(f(&m)),
            PluginError::Corrupt(m) => PluginError::Corrupt(f(&m)),
            PluginError::Other(m) => PluginError::Other(f(&m)),
        }
    }
}
