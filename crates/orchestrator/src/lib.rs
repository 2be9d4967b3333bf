//! The `orchestrator` command line over [`orchestrator_core`]: parse the
//! arguments ([`cli`]), call the core ([`commands`]), render its reports
//! (`render`) and map outcomes to exit codes ([`exit`]). The built-in plugins
//! are compiled in ([`builtins`]), so the binary is the whole install.
//!
//! **Architecture invariant:** no backup logic here; a daemon, a container
//! entrypoint or a test calls the same core functions.

pub mod builtins;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod logging;
pub mod progress;
mod render;
