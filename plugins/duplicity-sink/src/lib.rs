//! The duplicity sink: each source's backups as a duplicity chain under the
//! source's place in the target, so stock `duplicity restore` reads them.
//!
//! The format layer ([`format`]) is plain Rust tested natively against the
//! facts of `shared/spec/duplicity-format.md`; [`sink`] puts it behind the
//! plugin API and the host's storage capability.
//!
//! the built-in sink. `format/` is duplicity's format in plain Rust, each piece
//! tested natively against the spec: time strings, remote names (long, short,
//! old W3C), manifests with duplicity's quoting, chain discovery, librsync
//! signature block sizes (hashed by the host's `rsync` capability), tar headers
//! (GNU long names for raw bytes), the difftar volume writer (64 KiB multivol
//! chunks, volume boundaries), a streaming tar reader, sigtar reading and the
//! merge of a chain's sigtars (`entries.rs`), and librsync deltas made and
//! applied as streams (`delta.rs`). `sink/` puts it behind the plugin API:
//! `store.rs` (names and encodings per `encryption`, the target listing as
//! chains, manifests and signatures from the cache else the target),
//! `backup.rs` (a full set, or an incremental that merges the new walk with the
//! chain's signatures: unchanged entries are neither read nor written, changed
//! files become deltas, vanished paths `deleted/` entries), `reader.rs` (each
//! set's volumes as one entry stream, the streams merged by index; a file with
//! one delta whose copies are in order streams its snapshot through the delta,
//! other deltas are applied against scratch files). Uploads go in duplicity's
//! order (volumes, sigtar, manifest last); leftovers of an interrupted run (a
//! set without a manifest) are removed by the next run; `keep_full` removes
//! whole chains. Entry attributes are PAX records `ORCHESTRATOR.attr.<name>`
//! (names escaped to `[A-Za-z0-9._-]` and `%XX`, values with `%`, newline and
//! NUL as `%XX`) in an `x` header before the entry's headers, in volumes (a
//! multivol file's first chunk) and sigtars, where a file with attributes also
//! gets `ORCHESTRATOR.size`; entries without attributes get no `x` header and
//! are byte-identical to duplicity-style output (a golden-hash test). The
//! reader returns attributes from the newest set with the entry; the
//! incremental compares them with the chain's (`Collated`), and a file whose
//! size and mtime match the recorded ones but whose attributes, mode or owner
//! changed is stored without its content: a `diff/` with the copy-all delta
//! (`delta::copy_all`: magic, `COPY(0, size)`, END) and the old signature.

pub mod format;
pub mod sink;

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_sink!(sink::DuplicitySink);
