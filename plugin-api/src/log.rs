//! Log lines that reach the host's log, tagged with the plugin's name.
//!
//! Use the macros: `plugin_sdk::info!("listed {n} folders")`. A `warn!` about
//! one entry (a file that cannot be read) counts as a warning of the run.

use crate::bindings::source::orchestrator::plugin::{log, progress};

pub use log::Level;

/// Write one line at `level`.
pub fn write(level: Level, message: &str) {
    log::write(level, message);
}

/// Tell the host what the plugin is doing now; shown as progress.
pub fn status(message: &str) {
    progress::status(message);
}

/// Log at trace level, with `format!` arguments.
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Trace, &format!($($t)*)) } }
/// Log at debug level, with `format!` arguments.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, &format!($($t)*)) } }
/// Log at info level, with `format!` arguments.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, &format!($($t)*)) } }
/// Log a warning, with `format!` arguments.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, &format!($($t)*)) } }
/// Log an error, with `format!` arguments.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, &format!($($t)*)) } }
