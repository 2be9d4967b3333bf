//! What the core reads from its environment, passed in rather than read
//! from the process: secrets given as `{ env = "NAME" }` and the cache
//! directories. The binary hands over the process's environment; tests
//! hand each run a map of its own, so runs in one process never share it.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variables by name.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The process's environment (variables that are not UTF-8 are left out:
    /// a secret or path in them could not be used anyway).
    pub fn process() -> Environment {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment of exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Environment {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A variable's value.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value a secret reference points at: the variable's value, or the
    /// file's content without its final newline. The error says which
    /// variable or file, never a value.
    pub fn secret(&self, source: &orchestrator_config::SecretSource) -> Result<String, String> {
        match source {
            orchestrator_config::SecretSource::Env(var) => {
                self.var(var).map(str::to_string).ok_or_else(|| format!("environment variable {var} is not set"))
            }
            orchestrator_config::SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
        }
    }

    /// `$XDG_CACHE_HOME/orchestrator` (or `~/.cache/orchestrator`).
    pub fn user_cache_dir(&self) -> Option<PathBuf> {
        let base = self
            .var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| self.var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("orchestrator"))
    }

    /// Where compiled plugins are cached, shared by every pipeline.
    pub fn compiled_cache_dir(&self) -> Option<PathBuf> {
        Some(self.user_cache_dir()?.join("compiled"))
    }
}
