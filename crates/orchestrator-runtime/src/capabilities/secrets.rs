//! Secrets named in a plugin's configuration. The host resolves them before
//! the run; a plugin may learn a value only when the pipeline grants it.

use crate::bindings::PluginError;
use crate::bindings::source::orchestrator::plugin::secrets;
use crate::state::PluginState;
use orchestrator_config::Secrets;
use std::collections::BTreeSet;

/// The secrets of one plugin instance and which of them it may read.
#[derive(Debug, Default, Clone)]
pub struct SecretsCtx {
    values: Secrets,
    revealable: BTreeSet<String>,
}

impl SecretsCtx {
    /// Secrets by key path, and the names the plugin is granted to reveal.
    pub fn new(values: Secrets, revealable: BTreeSet<String>) -> Self {
        SecretsCtx { values, revealable }
    }

    /// Every value, so the log can redact them.
    pub fn all_values(&self) -> Vec<String> {
        self.values.values().map(|v| v.expose().to_string()).collect()
    }

    /// A secret for host code acting on the plugin's behalf (never the plugin).
    pub fn get(&self, name: &str) -> Option<&orchestrator_config::SecretValue> {
        self.values.get(name)
    }

    /// The value for the plugin itself, if granted.
    pub fn reveal(&self, name: &str) -> Result<String, PluginError> {
        let Some(value) = self.values.get(name) else {
            return Err(PluginError::NotFound(format!("no secret `{name}` in this plugin's configuration")));
        };
        if !self.revealable.contains(name) {
            return Err(PluginError::PermissionDenied(format!(
                "the plugin asked to read secret `{name}`, which the pipeline does not grant; \
                 add \"{name}\" to this plugin's `allow.reveal` if you trust it with the value"
            )));
        }
        Ok(value.expose().to_string())
    }
}

impl secrets::Host for PluginState {
    async fn reveal(&mut self, name: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.secrets.reveal(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_needs_a_grant_and_debug_hides_values() {
        use orchestrator_config::SecretValue;
        let values = Secrets::from_iter([
            ("token".to_string(), SecretValue::new("s3cr3t".into())),
            ("password".to_string(), SecretValue::new("hunter2".into())),
        ]);
        let ctx = SecretsCtx::new(values, BTreeSet::from(["token".to_string()]));
        assert_eq!(ctx.reveal("token").unwrap(), "s3cr3t");
        let denied = ctx.reveal("password").unwrap_err();
        assert!(matches!(&denied, PluginError::PermissionDenied(m) if !m.contains("hunter2")));
        assert!(matches!(ctx.reveal("nope"), Err(PluginError::NotFound(_))));
        assert!(!format!("{ctx:?}").contains("hunter2"));
    }
}
