//! The backup engine under the `orchestrator` command line: everything a
//! run, a restore or a check does, as library calls that return reports.
//!
//! - [`Plan`]: a pipeline file loaded with its plugins (built-in or file),
//!   storages and the [`Environment`] secrets come from; it starts plugin
//!   instances with their final grants.
//! - [`run::run_pipeline`] → [`report::RunReport`]: every (source, sink)
//!   pair as a job ([`job`]), under its run lock ([`lock`]), stoppable
//!   ([`stop`]).
//! - [`restore::restore`] → [`report::RestoreReport`]: one engine over a
//!   [`restore::RestoreTarget`] (a directory, or a source plugin's writer).
//! - [`read`]: list, status, verify (and [`compare`] with the live source);
//!   [`inspect`]: validate and plugin descriptions.
//!
//! **Architecture invariant:** nothing here prints or exits; every outcome
//! is a value (a report or an [`Error`]) that the caller renders.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orchestrator_core::Error> {
//! use orchestrator_core::{Environment, Plan, run::{RunOptions, run_pipeline}, stop::Stop};
//! let plan = Plan::load("pipeline.toml".as_ref(), Environment::process(), &[])?;
//! let report = run_pipeline(plan, &RunOptions::default(), &Stop::new()).await?;
//! println!("{} job(s), ok: {}", report.jobs.len(), report.ok);
//! # Ok(()) }
//! ```

pub mod compare;
mod env;
mod error;
pub mod history;
pub mod inspect;
pub mod job;
pub mod lock;
pub mod plan;
pub mod prune;
pub mod read;
pub mod recovery;
pub mod report;
pub mod restore;
mod restore_dir;
pub mod run;
pub mod stop;
pub mod stored_pipeline;
pub mod timespec;

pub use env::Environment;
pub use error::{Error, Result};
pub use orchestrator_runtime::types;
pub use plan::{Builtin, Plan};
pub use restore_dir::{RestoreWriter, show};
