#!/usr/bin/env bash
# Benchmark of the duplicity sink against stock duplicity 3.x and restic
# (issue 3), not a timed test: the same data set, the same machine, one run.
# The data set is about 1 GiB: 10,000 small files and a few large ones, half
# of it compressible. Every tool encrypts with a passphrase: ours and
# duplicity with OpenPGP (AES-256), restic with its own format.
# Times: full backup, incremental with nothing changed, incremental after 1%
# changed, full restore of the latest state. Prints seconds, ratios
# (theirs / ours), stored sizes and our peak memory.
# The full backup and the restore, the steps that take seconds, are run
# BENCH_RUNS times (default 3) for every tool, from scratch each time, and the
# median is shown: one run on a small VM varies by a tenth. The incrementals
# run once (a second run would be a different incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${BENCH_DIR:-/dev/shm/orchestrator-bench-dup}
rm -rf "$work"; mkdir -p "$work"
# ORCHESTRATOR=/path/to/binary measures another build (a baseline).
bin=${ORCHESTRATOR:-$repo/target/release/orchestrator}
[ -n "${ORCHESTRATOR:-}" ] || cargo build --release --quiet
command -v restic >/dev/null || { echo "installing restic"; apt-get install -y -q restic >/dev/null; }
# duplicity 3.x as scripts/test.sh installs it, else Debian's.
dup3=${ORCHESTRATOR_DUPLICITY3:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/duplicity3/bin/duplicity}
[ -x "$dup3" ] || dup3=$(command -v duplicity)
echo "duplicity: $("$dup3" --version)"

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

export BENCH_PASSPHRASE="bench passphrase" PASSPHRASE="bench passphrase"
cat > "$work/p.toml" <<EOT
[pipeline]
name = "bench"
cache_dir = "$work/ours-cache"
[sources.data]
plugin = "directory"
path = "$work/data"
[sinks.dup]
plugin = "duplicity-sink"
target = "file://$work/ours"
encryption = "symmetric"
passphrase = { env = "BENCH_PASSPHRASE" }
volsize_mb = 200
EOT

# Seconds of one command; its peak RSS (KiB) goes to $work/rss.
t() {
    local s=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    python3 -c "print(f'{$(date +%s.%N) - $s:.2f}')"
}
# The largest peak so far, in a file: medians run in subshells.
echo 0 > "$work/peak"
track() { local r; r=$(cat "$work/rss"); [ "$r" -gt "$(cat "$work/peak")" ] && echo "$r" > "$work/peak"; true; }
runs=${BENCH_RUNS:-3}
# The median seconds of $runs runs of a command, each after `$1` (a cleanup
# function); our peak memory is tracked over all of ours.
median() {
    local prepare=$1; shift
    local times=()
    for _ in $(seq "$runs"); do
        "$prepare"
        times+=("$(t "$@")")
        if [ "$1" = "$bin" ]; then track; fi
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# 1% of the data: 100 small files rewritten and 8 MiB inside a large file.
change_one_percent() {
    python3 - "$work/data" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(0, 10_000, 100):
    p = os.path.join(root, f"small/d{i // 500:02d}/f{i:05d}")
    open(p, "wb").write(os.urandom(os.path.getsize(p)))
with open(os.path.join(root, "large/disk.img"), "r+b") as f:
    f.seek(100 << 20)
    f.write(os.urandom(8 << 20))
PY
}

# Compile the plugins once (cached on disk, as after any first run), so the
# timings are of backups, not of compiling.
"$bin" validate "$work/p.toml" >/dev/null
sync
fresh_ours() { rm -rf "$work/ours" "$work/ours-cache"; }
fresh_dup() { rm -rf "$work/dup" "$work/dup-cache"; }
fresh_restic() { rm -rf "$work/restic"; restic init >/dev/null; }
ours_full=$(median fresh_ours "$bin" --log warn run "$work/p.toml")
sleep 1
ours_idle=$(t "$bin" --log warn run "$work/p.toml"); track

dup=("$dup3" --volsize 200 --archive-dir "$work/dup-cache")
dup_full=$(median fresh_dup "${dup[@]}" full "$work/data" "file://$work/dup")
dup_idle=$(t "${dup[@]}" incremental "$work/data" "file://$work/dup")

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/restic
restic_full=$(median fresh_restic restic backup "$work/data")
restic_idle=$(t restic backup "$work/data")

change_one_percent
sleep 1
ours_inc=$(t "$bin" --log warn run "$work/p.toml"); track
dup_inc=$(t "${dup[@]}" incremental "$work/data" "file://$work/dup")
restic_inc=$(t restic backup "$work/data")

clear_restored() { rm -rf "$work/ours-restored" "$work/dup-restored" "$work/restic-restored"; }
ours_restore=$(median clear_restored "$bin" --log warn restore "$work/p.toml" --source data --to "$work/ours-restored")
diff -rq "$work/data" "$work/ours-restored" >/dev/null || { echo "our restore differs!"; exit 1; }
dup_restore=$(median clear_restored "${dup[@]}" restore "file://$work/dup" "$work/dup-restored")
restic_restore=$(median clear_restored restic restore latest --target "$work/restic-restored")
clear_restored

python3 - <<PY
rows = [
    ("full backup", $ours_full, $dup_full, $restic_full),
    ("unchanged inc", $ours_idle, $dup_idle, $restic_idle),
    ("1% changed inc", $ours_inc, $dup_inc, $restic_inc),
    ("full restore", $ours_restore, $dup_restore, $restic_restore),
]
print(f"{'':16}{'ours':>8}{'duplicity':>11}{'restic':>9}{'dup/ours':>10}{'restic/ours':>13}")
for name, o, d, r in rows:
    print(f"{name:16}{o:>7.2f}s{d:>10.2f}s{r:>8.2f}s{d/o:>9.1f}x{r/o:>12.1f}x")
PY
echo "full backup and restore: median of $runs runs each"
echo "our peak memory: $(($(cat "$work/peak") / 1024)) MiB"
du -sh "$work/ours" "$work/dup" "$work/restic" | sed 's/^/stored: /'
rm -rf "$work"
