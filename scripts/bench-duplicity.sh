#!/usr/bin/env bash
# Benchmark of the duplicity sink against stock duplicity and restic (issue 3),
# not a timed test: the same data set, the same machine, one run. The data set
# is about 1 GiB: 10,000 small files and a few large ones, half of it
# compressible. Until OpenPGP lands in the sink, every tool runs without
# encryption (duplicity --no-encryption, gzip) except restic, which always
# encrypts. Prints seconds and ratios (theirs / ours).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${BENCH_DIR:-/dev/shm/orchestrator-bench-dup}
rm -rf "$work"; mkdir -p "$work"
cargo build --release --quiet
bin=$repo/target/release/orchestrator
for tool in duplicity restic; do
    command -v "$tool" >/dev/null || { echo "installing $tool"; apt-get install -y -q "$tool" >/dev/null; }
done

echo "building the data set in $work/data ..."
python3 - "$work/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [b"backup", b"restore", b"volume", b"chain", b"manifest", b"signature", b"delta", b"archive"]
def compressible(n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])
for i in range(10_000):
    d = os.path.join(root, f"small/d{i // 500:02d}")
    os.makedirs(d, exist_ok=True)
    n = rng.randint(1_000, 16_000)
    data = compressible(n) if i % 2 else os.urandom(n)
    open(os.path.join(d, f"f{i:05d}"), "wb").write(data)
os.makedirs(os.path.join(root, "large"), exist_ok=True)
chunk = compressible(1 << 20)
with open(os.path.join(root, "large/log.txt"), "wb") as f:
    for _ in range(420):
        f.write(chunk)
for name in ("disk.img", "video.bin"):
    with open(os.path.join(root, "large", name), "wb") as f:
        for _ in range(230):
            f.write(os.urandom(1 << 20))
PY
du -sh "$work/data"

cat > "$work/p.toml" <<EOT
[pipeline]
name = "bench"
[sources.data]
plugin = "directory"
path = "$work/data"
[sinks.dup]
plugin = "duplicity-sink"
target = "file://$work/ours"
encryption = "none"
volsize_mb = 200
EOT

t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; python3 -c "print(f'{$(date +%s.%N) - $s:.1f}')"; }
sync; ours_full=$(t "$bin" --log warn run "$work/p.toml")
ours_restore=$(t "$bin" --log warn restore "$work/p.toml" --source data --to "$work/ours-restored")
diff -rq "$work/data" "$work/ours-restored" >/dev/null || { echo "our restore differs!"; exit 1; }
rm -rf "$work/ours-restored"

dup=(duplicity --no-encryption --volsize 200 --archive-dir "$work/dup-cache")
dup_full=$(t "${dup[@]}" full "$work/data" "file://$work/dup")
dup_restore=$(t "${dup[@]}" restore "file://$work/dup" "$work/dup-restored")
rm -rf "$work/dup-restored"

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/restic
restic init >/dev/null
restic_full=$(t restic backup "$work/data")
restic_restore=$(t restic restore latest --target "$work/restic-restored")
rm -rf "$work/restic-restored"

python3 - <<PY
rows = [("full backup", $ours_full, $dup_full, $restic_full), ("full restore", $ours_restore, $dup_restore, $restic_restore)]
print(f"{'':14}{'ours':>8}{'duplicity':>11}{'restic':>9}{'dup/ours':>10}{'restic/ours':>13}")
for name, o, d, r in rows:
    print(f"{name:14}{o:>7.1f}s{d:>10.1f}s{r:>8.1f}s{d/o:>9.1f}x{r/o:>12.1f}x")
PY
du -sh "$work/ours" "$work/dup" "$work/restic" | sed 's/^/stored: /'
rm -rf "$work"
