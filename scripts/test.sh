#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and end-to-end tests
# against the built binary. Installs what it needs first. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

cargo fmt --all --check
# One profile for everything: the plugins are built once (by host/build.rs into
# target/wasm) and wasmtime compiles plugins fast in release.
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
