//! A plugin's own keys, converted to the JSON the plugin receives, with
//! secret references (`{ env = "NAME" }`, `{ file = "path" }`) taken out and
//! replaced by `{"secret": "<key path>"}`.

use super::Parser;
use crate::{SecretRef, SecretSource};
use serde_json::Value as Json;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

impl Parser<'_> {
    /// `key_path` names the value for the plugin (`auth.token`, `keys.0`);
    /// `full` names it in errors (`sources.api.keys[0]`).
    pub(super) fn plugin_config(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        key_path: &str,
        full: &str,
        secrets: &mut Vec<SecretRef>,
    ) -> Json {
        match v.get_ref() {
            DeValue::String(s) => Json::String(s.to_string()),
            DeValue::Integer(_) => super::integer(v.get_ref()).map(Json::from).unwrap_or_else(|| {
                self.error(v.span(), full, "integer out of range (a 64-bit signed integer)");
                Json::Null
            }),
            DeValue::Float(f) => match f.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Json::Number(n),
                None => {
                    self.error(v.span(), full, "nan and inf cannot be passed to a plugin (JSON has no such numbers)");
                    Json::Null
                }
            },
            DeValue::Boolean(b) => Json::Bool(*b),
            DeValue::Datetime(d) => Json::String(d.to_string()),
            DeValue::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.plugin_config(item, &format!("{key_path}.{i}"), &format!("{full}[{i}]"), secrets)
                    })
                    .collect(),
            ),
            DeValue::Table(t) if t.contains_key("env") || t.contains_key("file") => {
                self.secret(v, t, key_path, full, secrets)
            }
            DeValue::Table(t) => {
                let mut map = serde_json::Map::new();
                for (k, item) in t.iter() {
                    let name = k.get_ref().to_string();
                    let json =
                        self.plugin_config(item, &format!("{key_path}.{name}"), &format!("{full}.{name}"), secrets);
                    map.insert(name, json);
                }
                Json::Object(map)
            }
        }
    }

    /// A table with `env` or `file`: a secret reference, which has nothing else.
    fn secret(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        t: &DeTable<'_>,
        key_path: &str,
        full: &str,
        secrets: &mut Vec<SecretRef>,
    ) -> Json {
        match self.secret_source(v, t, full) {
            Some(source) => {
                secrets.push(SecretRef { key: key_path.to_string(), source });
                serde_json::json!({ "secret": key_path })
            }
            None => Json::Null,
        }
    }

    /// Where a secret reference `{ env = … }` or `{ file = … }` points.
    pub(super) fn secret_source(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        t: &DeTable<'_>,
        full: &str,
    ) -> Option<SecretSource> {
        let only = t.iter().next().filter(|_| t.len() == 1);
        let Some((k, item)) = only else {
            self.error(v.span(), full, "a secret reference has exactly one key, `env` or `file`");
            return None;
        };
        let sub = format!("{full}.{}", k.get_ref());
        let value = self.string(item, &sub)?;
        if k.get_ref() == "env" {
            if value.is_empty() || value.contains(['=', '\0']) {
                let message = format!("expected the name of an environment variable, found {value:?}");
                self.error(item.span(), &sub, message);
                return None;
            }
            Some(SecretSource::Env(value))
        } else {
            if value.is_empty() {
                self.error(item.span(), &sub, "expected the path of the file holding the secret, found \"\"");
                return None;
            }
            Some(SecretSource::File(self.resolve(&value)))
        }
    }
}
