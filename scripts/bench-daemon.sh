#!/usr/bin/env bash
# Benchmark of `daemon` (issue 15): a small source backed up `every 1s` for
# BENCH_SECONDS (default 60), so each run adds an incremental to one chain.
# Reports the daemon's resident memory every 10 s (it must not grow with the
# runs), how late each run starts after its scheduled time (the due time is
# a whole second after the first, as `every` keeps its grid), and its
# resident memory idle between runs of a far-away schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${BENCH_SECONDS:-60}
work=${BENCH_DIR:-/dev/shm/orchestrator-bench-daemon}
bin=${ORCHESTRATOR:-$repo/target/release/orchestrator}
[ -n "${ORCHESTRATOR:-}" ] || cargo build --release --quiet
rm -rf "$work"; mkdir -p "$work/data"
cp -a "$repo/crates/orchestrator-core/src" "$work/data/"
pipeline() {
    cat > "$work/$1.toml" <<TOML
[pipeline]
name = "bench-daemon-$1"
cache_dir = "$work/cache-$1"
schedule = "$2"

[sources.data]
plugin = "directory"
path = "$work/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://$work/target-$1"
encryption = "none"
TOML
}
pipeline busy "every 1s"
pipeline idle "0 0 1 1 *"

"$bin" daemon "$work/idle.toml" 2>/dev/null & idle=$!
"$bin" daemon "$work/busy.toml" 2>"$work/busy.log" & busy=$!
for ((t = 10; t <= seconds; t += 10)); do
    sleep 10
    echo "t=${t}s  busy daemon RSS $(($(ps -o rss= -p "$busy") / 1024)) MiB"
done
echo "idle daemon RSS $(($(ps -o rss= -p "$idle") / 1024)) MiB, CPU time $(ps -o time= -p "$idle")"
kill -TERM "$busy" "$idle"; wait "$busy" "$idle" || true
# Lateness: each "starting" log line against the whole second it was due at
# (the first due time plus whole seconds).
python3 - "$work/busy.log" <<'PY'
import re, sys, statistics
from datetime import datetime
text = open(sys.argv[1]).read()
stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
first = stamp(re.search(r"next=(\S+?)\+00:00\[", text).group(1) + "Z")
starts = [stamp(m) for m in re.findall(r"^(\S+Z)\s+INFO starting", text, re.M)]
late = [(s - first) % 1.0 for s in starts]
print(f"{len(starts)} runs; start after the due time: median {statistics.median(late)*1000:.0f} ms, "
      f"max {max(late)*1000:.0f} ms")
PY
tail -n1 "$work/busy.log"
