//! Configuration as the host passes it: a JSON object with secret references.

use crate::PluginError;
use crate::bindings::source::orchestrator::plugin::secrets;
use serde::de::DeserializeOwned;

/// Parse the host's configuration JSON into the plugin's own config type.
///
/// Errors are `config` errors whose message starts with the key at fault
/// (`exclude.1: invalid type …`), which the host turns into a file and line of
/// the pipeline file.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = strip_position(&e.inner().to_string());
        // For an unknown field the path already ends with the field's name.
        let key = match (path.as_str(), unknown_field(&message)) {
            (".", Some(field)) => field.to_string(),
            (".", None) => String::new(),
            (p, _) => p.to_string(),
        };
        if key.is_empty() { PluginError::Config(message) } else { PluginError::Config(format!("{key}: {message}")) }
    })
}

/// serde_json appends "at line 1 column 42" of the JSON the host built, which
/// means nothing to the person who wrote the TOML.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// A secret named in the configuration (`password = { env = "X" }` in the
/// pipeline file). The plugin holds only its name: the host uses the value on
/// the plugin's behalf, and reveals it only when the pipeline grants that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    name: String,
}

impl Secret {
    /// The key path naming the secret (`password`, `auth.token`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret's value, if the plugin was granted `reveal-secret` for it.
    pub fn reveal(&self) -> Result<String, PluginError> {
        secrets::reveal(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Reference {
            secret: String,
        }
        let value = serde_json::Value::deserialize(d)?;
        serde_json::from_value::<Reference>(value).map(|r| Secret { name: r.secret }).map_err(|_| {
            serde::de::Error::custom("expected a secret reference: { env = \"VARIABLE\" } or { file = \"/path\" }")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        path: String,
        #[serde(default)]
        exclude: Vec<String>,
        password: Option<Secret>,
    }

    fn err(json: &str) -> String {
        match parse_config::<Conf>(json).unwrap_err() {
            PluginError::Config(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err(r#"{"path": "/x", "pathh": 1}"#).starts_with("pathh: unknown field `pathh`"));
        assert_eq!(
            err(r#"{"path": "/x", "exclude": ["a", 3]}"#),
            "exclude[1]: invalid type: integer `3`, expected a string"
        );
        assert_eq!(err(r#"{}"#), "missing field `path`");
        assert!(err(r#"{"path": "/x", "password": "hunter2"}"#).starts_with("password: expected a secret reference"));
    }

    #[test]
    fn secrets_arrive_as_names() {
        let c: Conf = parse_config(r#"{"path": "/x", "password": {"secret": "password"}}"#).unwrap();
        assert_eq!(c.password.unwrap().name(), "password");
    }
}
