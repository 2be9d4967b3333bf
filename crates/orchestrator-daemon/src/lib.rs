//! Unattended operation: what runs a pipeline when no one is watching.
//!
//! - [`run_once`]: one run with its notifications (`orchestrator run`, and
//!   each scheduled run).
//! - [`daemon()`]: the pipeline's sources on their schedules
//!   (`orchestrator daemon`), never two runs of one source at once,
//!   missed times caught up, the file reloaded on request.
//! - [`metrics`]: Prometheus metrics from the history and the chains, as a
//!   file or served at `/metrics` ([`serve`]).
//!
//! Like the core, nothing here prints or exits: the CLI renders what these
//! return, and logs go through `tracing`.

mod daemon;
pub mod metrics;
mod once;
pub mod serve;

pub use daemon::{DaemonOptions, DaemonSummary, daemon};
pub use once::run_once;
