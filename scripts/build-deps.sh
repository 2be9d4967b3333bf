# Sourced by scripts/demo.sh and scripts/test.sh: installs, from Debian's
# packages, what building orchestrator needs besides a Rust toolchain, and
# defines `apt_install` for the scripts' own packages.
#   - the wasm32-wasip2 target, for the built-in plugins;
#   - libssl-dev and pkg-config: libssh2-sys builds libssh2 against the
#     system OpenSSL (crates/orchestrator-sftp);
#   - make, nasm, autoconf, automake and libtool: isal-sys builds ISA-L's
#     igzip from its source and links it statically (crates/orchestrator-deflate).

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { $sudo apt-get update -q; apt_updated=1; }
    $sudo apt-get install -y -q --no-install-recommends "$@"
}

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
build_packages=()
[ -f /usr/include/openssl/ssl.h ] || build_packages+=(libssl-dev)
command -v pkg-config >/dev/null || build_packages+=(pkg-config)
for tool in make nasm autoconf automake; do
    command -v "$tool" >/dev/null || build_packages+=("$tool")
done
command -v libtoolize >/dev/null || build_packages+=(libtool)
if ((${#build_packages[@]})); then
    apt_install "${build_packages[@]}"
fi
