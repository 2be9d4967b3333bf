//! The orchestrator host: pipeline files, the WebAssembly runtime, host
//! capabilities, and the commands of the CLI.
//!
//! Data flows pipeline file → [`host::Host`] (plugins loaded, grants decided)
//! → [`backup::run_job`] per (source, sink) pair → sink plugin → storage
//! capability; and back through [`restore::RestoreWriter`] for restores.

pub mod backup;
pub mod capabilities;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod grants;
pub mod host;
pub mod lock;
pub mod restore;
pub mod runtime;
pub mod stop;
pub mod timespec;
