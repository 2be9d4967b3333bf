#!/usr/bin/env bash
# Benchmark of the imap source (not a timed test): messages per second of a
# first backup of 10,000 messages and of an incremental with 100 new ones,
# against a private Dovecot on loopback (TLS), into the duplicity sink; and
# mbsync (Debian's isync) pulling the same account into a Maildir as the
# reference. Needs dovecot-imapd (and isync for the reference; without it
# only our numbers are printed). Sizes: BENCH_MESSAGES, BENCH_NEW.
# Prints lines "BENCH <what>: <n> messages in <s> s = <rate> messages/s".
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo test --release -p orchestrator --test e2e imap_bench -- --ignored --nocapture --exact imap::imap_bench \
    >"$log" 2>&1; then
    tail -40 "$log" >&2
    exit 1
fi
grep '^BENCH' "$log"
