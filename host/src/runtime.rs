//! The WebAssembly runtime: one engine, compiled components cached on disk,
//! and a fresh store per plugin instance with its limits and grants.

pub mod bindings;
pub mod builtin;
mod engine;
mod instance;
pub mod state;

pub use builtin::BUILTINS;
pub use engine::{LoadedPlugin, Runtime, World};
pub use instance::{CallError, SinkInstance, SourceInstance};
pub use state::{Grants, Limits};
