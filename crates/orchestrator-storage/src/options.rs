//! A sink's `[sinks.NAME.storage]` table: the host's settings for reaching
//! its target (logins, host keys, endpoints). The plugin never sees them.

use crate::{Secrets, StorageError};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The storage table of one sink, with its secrets resolved.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// The table's keys; a secret is `{"secret": "storage.<key>"}`.
    pub values: Map<String, Value>,
    /// The secrets' values, by key path (`storage.password`).
    pub secrets: Secrets,
    /// Relative paths are taken from here: the pipeline file's directory.
    pub base_dir: PathBuf,
    /// The home directory, for defaults such as `~/.ssh/known_hosts`.
    pub home: Option<PathBuf>,
    /// The variables of [`crate::ENVIRONMENT`] that are set.
    pub environment: Secrets,
    /// The sink's `limits.upload_rate`, bytes per second.
    pub upload_rate: Option<u64>,
    /// The sink's `limits.upload_concurrency`: parts in flight per object.
    pub upload_concurrency: Option<u32>,
}

impl StorageOptions {
    /// Refuse keys this kind of storage does not know.
    pub fn only(&self, known: &[&str], kind: &str) -> Result<(), StorageError> {
        let unknown: Vec<&str> = self.values.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        Err(StorageError::Config(format!(
            "storage: {kind} targets do not take {} (they take: {known})",
            unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )))
    }

    /// A path, resolved against the pipeline file's directory.
    pub fn path(&self, key: &str) -> Result<Option<PathBuf>, StorageError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => {
                let p = PathBuf::from(s);
                Ok(Some(if p.is_absolute() { p } else { self.base_dir.join(p) }))
            }
            Some(_) => Err(StorageError::Config(format!("storage.{key}: expected a file path"))),
        }
    }

    /// A secret's value: the key must be a secret reference (`{ file = … }`
    /// or `{ env = … }`), never the value written in the pipeline file.
    pub fn secret(&self, key: &str) -> Result<Option<String>, StorageError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Object(o)) if o.contains_key("secret") => {
                let path = format!("storage.{key}");
                match self.secrets.get(&path) {
                    Some(v) => Ok(Some(v.expose().to_string())),
                    None => Err(StorageError::Config(format!("storage.{key}: the secret was not resolved"))),
                }
            }
            Some(_) => Err(StorageError::Config(format!(
                "storage.{key}: must be a secret, `{{ file = \"/run/secrets/x\" }}` or `{{ env = \"VAR\" }}`, \
                 so the value stays out of the pipeline file"
            ))),
        }
    }

    /// A non-empty string; `expected` says what it should be when it is not.
    pub fn string(&self, key: &str, expected: &str) -> Result<Option<String>, StorageError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(StorageError::Config(format!("storage.{key}: expected {expected}"))),
        }
    }

    /// `true` or `false`.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, StorageError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(StorageError::Config(format!("storage.{key}: expected true or false"))),
        }
    }

    /// A non-negative integer.
    pub fn integer(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| StorageError::Config(format!("storage.{key}: expected a whole number"))),
        }
    }

    /// The home directory, if known.
    pub fn home(&self) -> Option<&PathBuf> {
        self.home.as_ref()
    }
}
