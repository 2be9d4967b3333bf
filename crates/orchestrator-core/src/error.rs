//! The core crate's one error type.
//!
//! Rules: every variant carries a sentence a person can act on (naming the
//! file and line, the source and sink, or the object), never a secret value.
//! What the variant *is* decides the exit code, and the binary maps variants
//! to codes in one place (`orchestrator::exit`). Failures of single jobs or
//! single restored entries are not errors: they are in the reports.

/// Why an operation of the core could not be done at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is wrong (every problem, each with file:line and key).
    #[error("{0}")]
    Config(String),
    /// The command asks for something the pipeline does not have (a source
    /// or sink name), or for something unsupported.
    #[error("{0}")]
    Usage(String),
    /// A plugin cannot be loaded, does not accept its configuration, or
    /// wants more than the pipeline grants.
    #[error("{0}")]
    Plugin(String),
    /// The backup holds nothing at the time or path asked for.
    #[error("nothing to restore: {0}")]
    NothingToRestore(String),
    /// The operation started and failed (a sink that cannot read its
    /// backup, a restore target that cannot be opened).
    #[error("{0}")]
    Failed(String),
    /// The run lock could not be taken, kept or released: names the lock's
    /// path, who holds it and what to do.
    #[error("{0}")]
    Lock(String),
    /// One entry could not be restored (the restore goes on; the report
    /// lists it with its path).
    #[error("{0}")]
    Entry(String),
}

/// The core's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
