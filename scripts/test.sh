#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and end-to-end tests
# against the built binary. Installs what it needs first. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/build-deps.sh
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# Real peers the tests talk to: Debian's duplicity (0.8.22) and
# duplicity 3.x from PyPI in its own venv (tests/e2e/duplicity.rs runs each
# interop test against both; under CI=true a missing one fails the test).
need_packages=()
command -v duplicity >/dev/null || need_packages+=(duplicity)
command -v mkfifo >/dev/null || need_packages+=(coreutils)
# OpenSSH's sshd and ssh-keygen for the SFTP tests (tests/servers/src/sshd.rs).
[ -x /usr/sbin/sshd ] || need_packages+=(openssh-server)
[ -x /usr/bin/ssh-keygen ] || need_packages+=(openssh-client)
# Dovecot for the IMAP client's tests (tests/servers starts a private instance
# on free loopback ports; a system one the package may start is never used).
[ -x /usr/lib/dovecot/imap ] && [ -x /usr/bin/doveadm ] || need_packages+=(dovecot-imapd)
# rclone for the rclone: targets (tests/e2e/rclone_storage.rs).
[ -x /usr/bin/rclone ] || need_packages+=(rclone)
# Prometheus' promtool lints the metrics text (tests/servers/src/promtool.rs).
# Only the tool is used: the server the package starts where no policy-rc.d
# forbids it (on :9090) is stopped and disabled right after installing.
[ -x /usr/bin/promtool ] || need_packages+=(prometheus)
if ((${#need_packages[@]})); then
    apt_install "${need_packages[@]}"
fi
if [[ " ${need_packages[*]-} " == *" prometheus "* ]]; then
    if [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    else
        $sudo invoke-rc.d prometheus stop >/dev/null 2>&1 || true
        $sudo update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi

# duplicity 3.0.7: the newest 3.0.x; PyPI has a manylinux wheel for Debian's
# Python 3.11 with librsync inside. Installed with --no-deps and its runtime
# imports pinned, because 3.0.x requires every cloud backend's library (boto3,
# azure, megatools, ...), which the file:// backend never imports and some of
# which do not build here. Reused while the venv holds exactly this version.
# boto3 (with its dependencies) is the one backend library added: the S3
# interop tests run duplicity's boto3 backend against the test S3 server.
# 1.35: from 1.36 on, duplicity warns on every run against a service other
# than AWS (its issue 870), and the tests take any warning as a failure.
DUPLICITY3_VERSION=3.0.7
DUPLICITY3_PINS=(fasteners==0.20 pexpect==4.9.0 ptyprocess==0.7.0 python-gettext==5.0)
DUPLICITY3_BOTO3=1.35.99
duplicity3_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/duplicity3"
duplicity3_installed() {
    [ "$("$duplicity3_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("duplicity"), m.version("boto3"))' 2>/dev/null)" \
        = "$DUPLICITY3_VERSION $DUPLICITY3_BOTO3" ] && "$duplicity3_venv/bin/duplicity" --version >/dev/null 2>&1
}
if ! duplicity3_installed; then
    /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    rm -rf "$duplicity3_venv"
    /usr/bin/python3 -m venv "$duplicity3_venv"
    if ! "$duplicity3_venv/bin/pip" install -q --no-deps --only-binary duplicity \
        "duplicity==$DUPLICITY3_VERSION" "${DUPLICITY3_PINS[@]}"; then
        # No wheel for this platform: build it against Debian's librsync.
        build_packages=()
        for p in librsync-dev python3-dev gcc; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || build_packages+=("$p")
        done
        if ((${#build_packages[@]})); then apt_install "${build_packages[@]}"; fi
        "$duplicity3_venv/bin/pip" install -q --no-deps --no-binary duplicity \
            "duplicity==$DUPLICITY3_VERSION" "${DUPLICITY3_PINS[@]}"
    fi
    "$duplicity3_venv/bin/pip" install -q "boto3==$DUPLICITY3_BOTO3"
    duplicity3_installed || { echo "duplicity $DUPLICITY3_VERSION did not install into $duplicity3_venv" >&2; exit 1; }
fi
export ORCHESTRATOR_DUPLICITY3="$duplicity3_venv/bin/duplicity"

# The S3-compatible server of the s3:// tests (tests/servers/src/s3.rs):
# moto's standalone server from PyPI, in a venv of its own. It speaks S3's
# REST API over HTTP (SigV4, multipart uploads with AWS's part-size rule,
# If-None-Match on PUT and on completing an upload); the tests run it with
# IAM checks on, so a wrong secret key is refused as AWS refuses it.
MOTO_VERSION=5.2.6
s3_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/s3-server"
s3_installed() {
    [ "$("$s3_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" \
        = "$MOTO_VERSION" ] && [ -x "$s3_venv/bin/moto_server" ]
}
if ! s3_installed; then
    rm -rf "$s3_venv"
    /usr/bin/python3 -m venv "$s3_venv"
    "$s3_venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
    s3_installed || { echo "moto $MOTO_VERSION did not install into $s3_venv" >&2; exit 1; }
fi
export ORCHESTRATOR_S3_SERVER="$s3_venv/bin/moto_server"

# The SMTP server of the e-mail notification tests (tests/servers/src/smtp.rs
# runs tests/servers/smtp_server.py with this venv's Python): aiosmtpd from
# PyPI, with AUTH PLAIN/LOGIN, STARTTLS and implicit TLS.
AIOSMTPD_VERSION=1.4.6
smtp_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/smtp-server"
smtp_installed() {
    [ "$("$smtp_venv/bin/python" -c 'import aiosmtpd.controller, importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null)" \
        = "$AIOSMTPD_VERSION" ]
}
if ! smtp_installed; then
    rm -rf "$smtp_venv"
    /usr/bin/python3 -m venv "$smtp_venv"
    "$smtp_venv/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION"
    smtp_installed || { echo "aiosmtpd $AIOSMTPD_VERSION did not install into $smtp_venv" >&2; exit 1; }
fi
export ORCHESTRATOR_SMTP_SERVER="$smtp_venv/bin/python"

cargo fmt --all --check
# One profile for everything: the plugins are built once (by crates/orchestrator/build.rs into
# target/wasm) and wasmtime compiles plugins fast in release.
cargo clippy --release --workspace --all-targets -- -D warnings
# Everything the tests run, built once: the test build's feature set is
# the one the image's binary gets too, so nothing is compiled twice.
cargo test --release --workspace --no-run
# The container image the tests in tests/e2e/container.rs drive: the
# Dockerfile as users build it, on a Debian base made from Debian's packages
# (there is no image registry here), with that release binary.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    bash scripts/container-base.sh
    docker build --quiet --tag orchestrator:test . >/dev/null
    export ORCHESTRATOR_IMAGE=orchestrator:test
    echo "image orchestrator:test: $(docker image inspect -f '{{.Size}}' orchestrator:test | numfmt --to=iec)"
else
    echo "no Docker engine: the container tests are skipped (CI=true fails them)"
fi

cargo test --release --workspace
