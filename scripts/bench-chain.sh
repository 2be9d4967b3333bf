#!/usr/bin/env bash
# Benchmark of a long chain (issue 18): a full set of BENCH_DATA (default:
# this repository's crates/), then CHAIN_SETS incrementals (default 700, an
# hourly chain of a month) made as tests/e2e/incremental.rs makes them: one
# real incremental that adds a file, copied under the names of the others,
# all dated in the past. Then the next run, a full restore, list and verify,
# each with its wall time and peak memory (/usr/bin/time). Passphrase
# encryption, so every set is opened through OpenPGP.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
sets=${CHAIN_SETS:-700}
data_src=${BENCH_DATA:-$repo/crates}
work=${BENCH_DIR:-/dev/shm/orchestrator-bench-chain}
bin=${ORCHESTRATOR:-$repo/target/release/orchestrator}
[ -n "${ORCHESTRATOR:-}" ] || cargo build --release --quiet
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
rm -rf "$work"; mkdir -p "$work"
cp -a "$data_src" "$work/data"
printf 'chain bench passphrase' > "$work/pass"
cat > "$work/p.toml" <<TOML
[pipeline]
name = "bench-chain"
cache_dir = "$work/cache"

[sources.data]
plugin = "directory"
path = "$work/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://$work/backup"
encryption = "symmetric"
passphrase = { file = "$work/pass" }
TOML
"$bin" run "$work/p.toml" --log warn >/dev/null
sleep 1.1
echo "added by every incremental" > "$work/data/new.txt"
"$bin" run "$work/p.toml" --log warn >/dev/null
python3 - "$work/backup/data" "$sets" <<'PY'
import os, shutil, sys, time
place, sets = sys.argv[1], int(sys.argv[2])
stamp = lambda t: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
names = sorted(os.listdir(place))
full = next(n for n in names if n.startswith("duplicity-full."))[15:31]
incs = [n for n in names if ".to." in n]
end = incs[0].split(".to.")[1][:16]
start = int(time.time()) - sets - 100
for n in names:
    if n.startswith("duplicity-full"):
        os.rename(f"{place}/{n}", f"{place}/{n.replace(full, stamp(start))}")
for n in incs:
    first = n.replace(full, stamp(start)).replace(end, stamp(start + 1))
    os.rename(f"{place}/{n}", f"{place}/{first}")
    for k in range(1, sets):
        copy = first.replace(stamp(start + 1), stamp(start + k + 1)).replace(stamp(start), stamp(start + k))
        shutil.copyfile(f"{place}/{first}", f"{place}/{copy}")
PY
rm -rf "$work/cache"
echo "added after the chain" > "$work/data/after.txt"
measure() {
    local what=$1; shift
    /usr/bin/time -f "$what: %e s, peak %M KiB" "$@" >/dev/null 2>"$work/time.err" || { cat "$work/time.err"; exit 1; }
    tail -1 "$work/time.err"
}
echo "chain of $((sets + 1)) sets of $(du -sh "$work/data" | cut -f1) data:"
measure "run (set $((sets + 2)))" "$bin" run "$work/p.toml" --log warn
measure "restore" "$bin" restore "$work/p.toml" --source data --to "$work/restored" --log warn
diff -r "$work/data" "$work/restored" >/dev/null && echo "restore equals the data"
measure "list" "$bin" list "$work/p.toml" --source data --log warn
measure "verify" "$bin" verify "$work/p.toml" --log warn
