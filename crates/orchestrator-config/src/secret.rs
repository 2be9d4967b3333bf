//! Secret values once the host resolved them. The pipeline file holds only
//! references ([`crate::SecretSource`]); these types carry the values the
//! host uses on a plugin's behalf, and never print them.

use std::collections::BTreeMap;

/// A secret's value. Its `Debug` never shows the value, so it cannot leak
/// through a stray `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap a resolved value.
    pub fn new(value: String) -> Self {
        SecretValue(value)
    }

    /// The value, for the host code that uses it on the plugin's behalf.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

/// The resolved secrets of one plugin instance, by the configuration key
/// that referenced them (`password`, `storage.secret_access_key`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Secrets(BTreeMap<String, SecretValue>);

impl Secrets {
    /// The value of the secret at `key`.
    pub fn get(&self, key: &str) -> Option<&SecretValue> {
        self.0.get(key)
    }

    /// Every value, so logs can redact them.
    pub fn values(&self) -> impl Iterator<Item = &SecretValue> {
        self.0.values()
    }

    /// Add or replace the secret at `key`.
    pub fn insert(&mut self, key: String, value: SecretValue) {
        self.0.insert(key, value);
    }
}

/// `text` with every one of `secrets` replaced by `[REDACTED]`: what the host
/// does to plugin output and to servers' answers before a person sees them.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = text.to_string();
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, "[REDACTED]");
        }
    }
    out
}

impl FromIterator<(String, SecretValue)> for Secrets {
    fn from_iter<I: IntoIterator<Item = (String, SecretValue)>>(iter: I) -> Self {
        Secrets(iter.into_iter().collect())
    }
}

/// The pipeline file `text` with every string written inline under one of
/// `keys` (at any depth, in inline tables too) replaced by a note; secret
/// references and everything else stay as written. For documents that leave
/// the machine (the recovery kit).
pub fn without_inline_values(text: &str, keys: &[&str], note: &str) -> String {
    use toml::de::{DeTable, DeValue};
    fn walk(table: &DeTable<'_>, keys: &[&str], spans: &mut Vec<std::ops::Range<usize>>) {
        for (k, v) in table.iter() {
            match v.get_ref() {
                DeValue::String(_) if keys.contains(&k.get_ref().as_ref()) => spans.push(v.span()),
                DeValue::Table(t) => walk(t, keys, spans),
                DeValue::Array(items) => {
                    for item in items.iter() {
                        if let DeValue::Table(t) = item.get_ref() {
                            walk(t, keys, spans);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let Ok(doc) = DeTable::parse(text) else { return text.to_string() };
    let mut spans = Vec::new();
    walk(doc.get_ref(), keys, &mut spans);
    spans.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for span in spans {
        if out.is_char_boundary(span.start) && out.is_char_boundary(span.end) && span.end <= out.len() {
            out.replace_range(span, &format!("\"{note}\""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value() {
        let secrets: Secrets = [("password".to_string(), SecretValue::new("hunter2".into()))].into_iter().collect();
        assert!(!format!("{secrets:?}").contains("hunter2"));
        assert_eq!(secrets.get("password").map(SecretValue::expose), Some("hunter2"));
    }
}
