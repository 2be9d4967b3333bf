//! The plugins compiled into the binary, so one file is the whole install.

/// A plugin shipped inside the binary.
pub struct Builtin {
    /// The name a pipeline file uses: `plugin = "directory"`.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

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

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
