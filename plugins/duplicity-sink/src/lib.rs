//! The duplicity sink: each source's backups as a duplicity chain under the
//! source's place in the target, so stock `duplicity restore` reads them.
//!
//! The format layer ([`format`]) is plain Rust tested natively against the
//! facts of `shared/spec/duplicity-format.md`; [`sink`] puts it behind the
//! plugin API and the host's storage capability.
//!
//! Status (issue 3 in progress): full sets without encryption
//! (`encryption = "none"`: gzip volumes and signatures, compressed by the
//! host), with manifests as duplicity writes them; restores read plain and
//! gzip sets. Incrementals and OpenPGP come next.

pub mod format;
pub mod sink;

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_sink!(sink::DuplicitySink);
