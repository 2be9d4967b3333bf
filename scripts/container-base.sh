#!/usr/bin/env bash
# Makes the base image the Dockerfile's FROM names (debian:bookworm-slim)
# from Debian's packages, for machines with a Docker engine and no image
# registry (this project's CI). mmdebstrap builds a minimal Debian into a
# tarball, without man pages, docs and locales as Debian's own -slim image
# leaves them out, and `docker import` names it. The mirror is the one this
# machine's apt already uses, read at build time and never written into the
# repository. An image already in the engine under that name is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo

suite="${DEBIAN_SUITE:-bookworm}"
image="debian:${suite}-slim"
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image: already in the engine"
    exit 0
fi
command -v mmdebstrap >/dev/null || { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends mmdebstrap; }

# The first Debian mirror in the machine's apt sources (deb822 or one-line).
mirror="$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
      grep -hsE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } |
        grep -v -- '-security' | head -n1
)" || true
[ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$work/rootfs.tar" "$mirror"
docker import --change 'CMD ["bash"]' "$work/rootfs.tar" "$image" >/dev/null
echo "$image: made from $mirror ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
