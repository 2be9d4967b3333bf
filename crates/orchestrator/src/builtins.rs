//! The plugins compiled into the binary, so one file is the whole install.

use orchestrator_core::Builtin;

/// Every built-in plugin.
pub const BUILTINS: &[Builtin] = &[
    Builtin { name: "directory", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/directory.wasm")) },
    Builtin { name: "imap", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/imap.wasm")) },
    Builtin {
        name: "truenas-dataset",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/truenas_dataset.wasm")),
    },
    Builtin { name: "duplicity-sink", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/plugins/duplicity_sink.wasm")) },
];
