//! End-to-end tests: they drive the built `orchestrator` binary on real
//! files, with the real plugins compiled for wasm32-wasip2.
//!
//! Where tests go:
mod attributes; // entry attributes (Maildir flags) through the duplicity sink, restore and duplicity
mod cancel; // stopping a run: SIGTERM/SIGINT and limits.timeout cancel the source, store no set; TrueNAS snapshots released
mod cli; // plugin list/inspect, validate, exit codes, config errors
mod container; // the Docker image: volumes as the apps user read-only, TrueNAS local_path, docker stop, healthcheck
mod daemon; // `daemon`: schedules, skips, catch-up, SIGHUP reload, SIGTERM; `status --max-age`
mod duplicity; // interop with stock duplicity (Debian 0.8.22): each restores what the other wrote
mod encryption; // symmetric and public-key chains with stock duplicity and gpg, wrong keys
mod fanout; // one read of a source feeds every sink; a failing or hanging sink is cut off, the others finish
mod harness; // temp dirs, pipeline files, running the binary
mod imap; // the imap source against a real Dovecot: byte-exact restore, incrementals, flags, failures, duplicity
mod incremental; // chains: deltas, deletions, restore at every time, new chains, retention, the cache
mod lock; // the run lock: live locks fail only their job, stale ones are taken over, kill -9 at any moment, two runs at once
mod notify; // [notify.NAME] against real receivers (HTTP recorder, aiosmtpd, a program); metrics through promtool
mod rclone_storage; // rclone: targets through Debian's rclone to a real sshd: a chain there and back, empty cache, leftovers, bad settings
mod recovery_kit; // recovery-kit: duplicity restores by its command, no inline secrets, run warns until one is current
mod roundtrip; // a tree with odd names, modes, links and fifos through backup and restore
mod s3_storage; // s3:// targets against an S3 server: multipart there and back, empty cache, killed uploads, bad settings
mod sandbox; // misbehaving plugins fail only their own job
mod sftp_storage; // sftp:// targets against a real sshd: a chain there and back, the lock, host keys, bad settings
mod truenas; // the truenas-dataset source against the fake TrueNAS (each API generation) and a real sshd
