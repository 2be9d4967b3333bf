//! Builds the plugins for `wasm32-wasip2` so the binary can embed the built-in
//! ones and the tests can load the fixtures.
//!
//! The plugins are built by a nested `cargo` into `target/wasm` (its own
//! target directory, so it never waits on the outer build's lock) with the
//! `wasm` profile whatever the outer profile is: `cargo build --release` and
//! `cargo test` then share one plugin build instead of building twice.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in plugins (embedded) and test fixtures (loaded by path in tests).
const PLUGINS: &[(&str, &str)] = &[
    ("plugin-directory", "plugin_directory"),
    ("plugin-imap", "plugin_imap"),
    ("plugin-duplicity-sink", "plugin_duplicity_sink"),
    ("plugin-truenas-dataset", "plugin_truenas_dataset"),
    ("fixture-sink", "fixture_sink"),
    ("misbehaving-plugin", "misbehaving_plugin"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // crates/orchestrator → the workspace root.
    let workspace = manifest.ancestors().nth(2).unwrap().to_path_buf();
    for watched in ["plugin-api", "plugins", "tests/plugins", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ORCHESTRATOR_PLUGIN_DIR");

    let wasm_dir = match std::env::var_os("ORCHESTRATOR_PLUGIN_DIR") {
        // Prebuilt plugins (a packaging step that builds them separately).
        Some(dir) => PathBuf::from(dir),
        None => build_plugins(&workspace),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins");
    std::fs::create_dir_all(&out).unwrap();
    for (_, lib) in PLUGINS {
        let built = wasm_dir.join(format!("{lib}.wasm"));
        let short = lib.strip_prefix("plugin_").unwrap_or(lib);
        std::fs::copy(&built, out.join(format!("{short}.wasm")))
            .unwrap_or_else(|e| panic!("missing plugin {}: {e}", built.display()));
    }
    println!("cargo:rustc-env=ORCHESTRATOR_WASM_DIR={}", out.display());
}

fn build_plugins(workspace: &Path) -> PathBuf {
    let target_dir = workspace.join("target").join("wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "wasm", "--target-dir"])
        .arg(&target_dir);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    // Flags meant for the host (say `-C target-cpu=native`) must not reach the
    // wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins for wasm32-wasip2 failed (is the target installed? \
             `rustup target add wasm32-wasip2`)"
        );
    }
    target_dir.join("wasm32-wasip2").join("wasm")
}
