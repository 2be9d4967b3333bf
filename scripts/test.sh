#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and end-to-end tests
# against the built binary. Installs what it needs first. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# Real peers the end-to-end tests talk to, from Debian's packages.
need_packages=()
command -v duplicity >/dev/null || need_packages+=(duplicity)
command -v mkfifo >/dev/null || need_packages+=(coreutils)
if ((${#need_packages[@]})); then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${need_packages[@]}"
fi

cargo fmt --all --check
# One profile for everything: the plugins are built once (by host/build.rs into
# target/wasm) and wasmtime compiles plugins fast in release.
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
