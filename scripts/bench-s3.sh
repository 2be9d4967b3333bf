#!/usr/bin/env bash
# Benchmark of s3:// targets (issue 13), not a timed test: one run each of
# our full backup and restore, duplicity 3.x's (--concurrency 4, boto3) and
# restic's, against the same loopback S3 server (moto's, as the tests use),
# with the same data; and `rclone copy --transfers 8` of the same bytes as
# the plain parallel upload the server takes. Everything encrypts: ours and
# duplicity with OpenPGP, restic its own way. Prints seconds, ratios,
# upload throughput and our peak memory.
# Needs what scripts/test.sh installs (the S3 server's venv, duplicity 3 with
# boto3) plus restic and rclone from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${BENCH_DIR:-/dev/shm/orchestrator-bench-s3}
rm -rf "$work"; mkdir -p "$work"
bin=${ORCHESTRATOR:-$repo/target/release/orchestrator}
[ -n "${ORCHESTRATOR:-}" ] || cargo build --release --quiet
cache=${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci
server=${ORCHESTRATOR_S3_SERVER:-$cache/s3-server/bin/moto_server}
dup3=${ORCHESTRATOR_DUPLICITY3:-$cache/duplicity3/bin/duplicity}
for p in "$server" "$dup3"; do [ -x "$p" ] || { echo "$p is missing: run scripts/test.sh once" >&2; exit 1; }; done
for p in restic rclone; do command -v "$p" >/dev/null || apt-get install -y -q "$p" >/dev/null; done
size_mib=${BENCH_MIB:-400}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
HOME=$work "$server" -H 127.0.0.1 -p "$port" >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null; do sleep 0.2; done
keys=$("$(dirname "$server")/python" tests/servers/s3_admin.py "$endpoint" setup ours dup restic copy)
export AWS_ACCESS_KEY_ID=$(sed -n 1p <<<"$keys") AWS_SECRET_ACCESS_KEY=$(sed -n 2p <<<"$keys")

echo "building ${size_mib} MiB of data in $work/data ..."
python3 - "$work/data" "$size_mib" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [b"backup", b"restore", b"volume", b"chain", b"manifest", b"signature", b"delta", b"archive"]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])
for i in range(2_000):
    d = os.path.join(root, f"small/d{i // 250}")
    os.makedirs(d, exist_ok=True)
    n = rng.randint(1_000, 16_000)
    open(os.path.join(d, f"f{i:05d}"), "wb").write(text(n) if i % 2 else os.urandom(n))
os.makedirs(os.path.join(root, "large"), exist_ok=True)
big = (mib - 16) // 4
chunk = text(1 << 20)
with open(os.path.join(root, "large/log.txt"), "wb") as f:
    for _ in range(big):
        f.write(chunk)
for name in ("disk.img", "video.bin", "photos.tar"):
    with open(os.path.join(root, "large", name), "wb") as f:
        for _ in range(big):
            f.write(os.urandom(1 << 20))
PY
bytes=$(du -sb "$work/data" | cut -f1)

export BENCH_PASSPHRASE="bench passphrase" PASSPHRASE="bench passphrase"
cat > "$work/p.toml" <<EOT
[pipeline]
name = "bench"
cache_dir = "$work/ours-cache"
[sources.data]
plugin = "directory"
path = "$work/data"
[sinks.s3]
plugin = "duplicity-sink"
target = "s3://ours/bench"
encryption = "symmetric"
passphrase = { env = "BENCH_PASSPHRASE" }
volsize_mb = 200
[sinks.s3.storage]
endpoint = "$endpoint"
EOT

t() {
    local s=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    python3 -c "print(f'{$(date +%s.%N) - $s:.2f}')"
}
"$bin" validate "$work/p.toml" >/dev/null
ours_full=$(t "$bin" --log warn run "$work/p.toml"); ours_peak=$(cat "$work/rss")
dup=("$dup3" --volsize 200 --concurrency 4 --archive-dir "$work/dup-cache" --s3-endpoint-url "$endpoint" --s3-region-name us-east-1)
dup_full=$(t "${dup[@]}" full "$work/data" s3://dup/bench)
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=s3:$endpoint/restic
# A machine-wide AWS_CA_BUNDLE (for https proxies) breaks Go's S3 clients on
# plain http; nothing here needs it.
unset AWS_CA_BUNDLE
restic init >/dev/null
restic_full=$(t restic backup "$work/data")
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT=$endpoint \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
copy=$(t rclone copy --transfers 8 --config /dev/null "$work/data" bench:copy/data)

ours_restore=$(t "$bin" --log warn restore "$work/p.toml" --source data --to "$work/ours-restored")
ours_peak=$(( $(cat "$work/rss") > ours_peak ? $(cat "$work/rss") : ours_peak ))
diff -rq "$work/data" "$work/ours-restored" >/dev/null || { echo "our restore differs!"; exit 1; }
rm -rf "$work/ours-restored"
dup_restore=$(t "${dup[@]}" restore s3://dup/bench "$work/dup-restored"); rm -rf "$work/dup-restored"
restic_restore=$(t restic restore latest --target "$work/restic-restored"); rm -rf "$work/restic-restored"

python3 - <<PY
mib = $bytes / 2**20
rows = [("full backup", $ours_full, $dup_full, $restic_full), ("full restore", $ours_restore, $dup_restore, $restic_restore)]
print(f"{mib:.0f} MiB to a loopback S3 server (moto)")
print(f"{'':14}{'ours':>8}{'duplicity':>11}{'restic':>9}{'dup/ours':>10}{'restic/ours':>13}")
for name, o, d, r in rows:
    print(f"{name:14}{o:>7.2f}s{d:>10.2f}s{r:>8.2f}s{d/o:>9.1f}x{r/o:>12.1f}x")
print(f"rclone copy --transfers 8: {$copy:.2f}s, {mib/$copy:.0f} MiB/s; our full backup: {mib/$ours_full:.0f} MiB/s "
      f"({100*$copy/$ours_full:.0f}% of it)")
PY
echo "our peak memory: $((ours_peak / 1024)) MiB"
