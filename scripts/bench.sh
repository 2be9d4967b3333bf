#!/usr/bin/env bash
# Benchmarks of the foundation (not timed tests): entries per second walking a
# tree of 100,000 files, and bytes per second of file content across the
# host/plugin boundary at the host's 1 MiB chunk size, each with the peak
# memory of the orchestrator process. Data and targets live on tmpfs
# (/dev/shm) so the disk does not dominate. Prints one line per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cargo build --release --quiet
bin=$repo/target/release/orchestrator
sink=$repo/target/wasm/wasm32-wasip2/wasm/fixture_sink.wasm
work=${BENCH_DIR:-/dev/shm/orchestrator-bench}
files=${BENCH_FILES:-100000}
big_mib=${BENCH_MIB:-1024}
rm -rf "$work"; mkdir -p "$work"

# Runs a command and prints "<seconds> <peak RSS KiB>" of it.
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
dt = time.monotonic() - t
if r.returncode != 0:
    sys.exit(f"benchmark command failed: {sys.argv[1:]}")
print(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

pipeline() { # name path skip_content
    cat > "$work/$1.toml" <<EOT
[pipeline]
name = "bench-$1"
[sources.data]
plugin = "directory"
path = "$2"
[sinks.null]
plugin = { path = "$sink" }
target = "file://$work/target-$1"
skip_content = $3
EOT
}

echo "building a tree of $files files..."
python3 - "$work/tree" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per_dir = 1000
for i in range(n):
    d = os.path.join(root, f"d{i // per_dir:04d}")
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write("x" * 100)
PY
echo "writing $big_mib MiB of content..."
mkdir -p "$work/big"
head -c $((big_mib << 20)) /dev/urandom > "$work/big/blob.bin"

pipeline walk "$work/tree" true
pipeline bytes "$work/big" false
"$bin" run "$work/walk.toml" >/dev/null  # warm the compiled-plugin cache

best() { # name toml
    local best_t=999999 best_rss=0
    for _ in 1 2 3; do
        rm -rf "$work/target-$1"
        read -r t rss < <(measure "$bin" --log warn run "$2")
        if python3 -c "import sys; sys.exit(0 if $t < $best_t else 1)"; then best_t=$t; best_rss=$rss; fi
    done
    echo "$best_t $best_rss"
}

read -r t rss < <(best walk "$work/walk.toml")
entries=$((files + files / 1000 + 1))
python3 -c "print(f'walk: {$entries} entries in {$t:.2f} s = {$entries/$t:,.0f} entries/s, peak RSS {$rss/1024:.0f} MiB')"

read -r t rss < <(best bytes "$work/bytes.toml")
python3 -c "print(f'content: {$big_mib} MiB in {$t:.2f} s = {$big_mib/$t:,.0f} MiB/s through source, host and sink at 1 MiB chunks, peak RSS {$rss/1024:.0f} MiB')"

rm -rf "$work"
