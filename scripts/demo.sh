#!/usr/bin/env bash
# Builds orchestrator, backs up the example data with the example pipeline,
# restores it into a fresh directory and shows that both trees are identical.
# Needs only a Rust toolchain (rustup); installs the Debian packages the build
# needs (scripts/build-deps.sh). No servers, no input.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

source scripts/build-deps.sh
cargo build --release --quiet

demo=${DEMO_DIR:-$(mktemp -d /tmp/orchestrator-demo.XXXXXX)}
rm -rf "$demo/data" "$demo/backups" "$demo/restored" "$demo/restored-by-duplicity"
mkdir -p "$demo"
cp -a examples/demo/data "$demo/data"
sed -e "s|@DEMO@|$demo|g" examples/demo/pipeline.toml > "$demo/pipeline.toml"
# The archive's passphrase; keep it somewhere safe in real use.
[ -s "$demo/passphrase" ] || (umask 077; head -c 24 /dev/urandom | base64 > "$demo/passphrase")

bin=$repo/target/release/orchestrator
echo "== validate"; "$bin" validate "$demo/pipeline.toml"
echo "== run (full)"; "$bin" run "$demo/pipeline.toml"
echo "== change a file, run again (incremental: only the change is stored)"
sleep 1
echo "edited after the first backup" >> "$demo/data/notes/todo.txt"
"$bin" run "$demo/pipeline.toml"
echo "== status";  "$bin" status "$demo/pipeline.toml"
echo "== list";    "$bin" list "$demo/pipeline.toml" --source documents
echo "== restore"; "$bin" restore "$demo/pipeline.toml" --source documents --to "$demo/restored"
echo "== compare"
diff -r --no-dereference "$demo/data" "$demo/restored"
echo "backup and restore match: $demo/data == $demo/restored"
echo "the archive is duplicity's format, encrypted: ls $demo/backups/documents"
ls "$demo/backups/documents"
if command -v duplicity >/dev/null; then
    echo "== stock duplicity restores it too"
    PASSPHRASE=$(cat "$demo/passphrase") duplicity restore --archive-dir "$demo/duplicity-cache" \
        "file://$demo/backups/documents" "$demo/restored-by-duplicity" >/dev/null
    diff -r --no-dereference "$demo/data" "$demo/restored-by-duplicity"
    echo "duplicity's restore matches too: $demo/restored-by-duplicity"
fi
