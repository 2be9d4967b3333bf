//! Deciding what a plugin may use: what it wants (from `validate`) against
//! what its configuration and its `allow` table grant.
//!
//! A want is granted by the plugin's own configuration when its target is one
//! of the configuration's string values (or, for paths and URLs, lies under
//! one): the directory source may read the `path` the user wrote. Anything
//! else must be listed under `allow`. Revealing a secret and running programs
//! always need `allow`.

use crate::runtime::bindings::Want;
use orchestrator_config::PluginInstance;
use std::collections::BTreeSet;
use std::path::Path;

/// The effective grants of one plugin instance.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Granted {
    /// Trees it may read.
    pub read: Vec<String>,
    /// Secrets it may read itself.
    pub reveal: BTreeSet<String>,
    /// Network endpoints (`host:port`) it may reach through host capabilities.
    pub connect: Vec<String>,
    /// URL bases it may send requests under.
    pub http: Vec<String>,
    /// Program ids it may run.
    pub exec: Vec<String>,
}

impl Granted {
    /// One line per grant, for `validate`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.read.iter().map(|p| format!("read {p}")));
        out.extend(self.reveal.iter().map(|s| format!("reveal secret {s}")));
        out.extend(self.connect.iter().map(|c| format!("connect {c}")));
        out.extend(self.http.iter().map(|u| format!("http {u}")));
        out.extend(self.exec.iter().map(|x| format!("exec {x}")));
        out
    }
}

/// Every string value in a JSON configuration, at any depth.
fn config_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| config_strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| config_strings(v, out)),
        _ => {}
    }
}

fn path_under(want: &str, base: &str) -> bool {
    let (want, base) = (Path::new(want), Path::new(base));
    want.is_absolute()
        && base.is_absolute()
        && !want.components().any(|c| c == std::path::Component::ParentDir)
        && want.starts_with(base)
}

pub(crate) fn url_under(want: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    want == base || want.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Decide the grants for `wants`; every refusal is a sentence naming the want
/// and how to grant it.
pub fn decide(instance: &PluginInstance, wants: &[Want]) -> Result<Granted, Vec<String>> {
    let mut strings = Vec::new();
    config_strings(&instance.config, &mut strings);
    let secret_names: BTreeSet<&str> = instance.secrets.iter().map(|s| s.key.as_str()).collect();
    let allow = &instance.allow;
    let mut granted = Granted::default();
    let mut refused = Vec::new();
    for want in wants {
        match want {
            Want::ReadPath(p) => {
                if strings.iter().chain(&allow.read).any(|base| path_under(p, base)) {
                    granted.read.push(p.clone());
                } else {
                    refused.push(format!("read {p} (grant it with allow.read = [\"{p}\"])"));
                }
            }
            Want::RevealSecret(name) => {
                if !secret_names.contains(name.as_str()) {
                    refused.push(format!("reveal secret {name} (there is no secret `{name}` in its configuration)"));
                } else if allow.reveal.iter().any(|r| r == name) {
                    granted.reveal.insert(name.clone());
                } else {
                    refused.push(format!("reveal secret {name} (grant it with allow.reveal = [\"{name}\"])"));
                }
            }
            Want::Connect(endpoint) => {
                if strings.iter().chain(&allow.connect).any(|s| s == endpoint) {
                    granted.connect.push(endpoint.clone());
                } else {
                    refused.push(format!("connect {endpoint} (grant it with allow.connect = [\"{endpoint}\"])"));
                }
            }
            Want::Http(url) => {
                if strings.iter().chain(&allow.http).any(|base| url_under(url, base)) {
                    granted.http.push(url.clone());
                } else {
                    refused.push(format!("http {url} (grant it with allow.http = [\"{url}\"])"));
                }
            }
            Want::Exec(program) => {
                if allow.exec.iter().any(|p| p == program) {
                    granted.exec.push(program.clone());
                } else {
                    refused.push(format!("exec {program} (grant it with allow.exec = [\"{program}\"])"));
                }
            }
            Want::Other((kind, target)) => {
                refused.push(format!("{kind} {target} (this version of orchestrator does not know that capability)"));
            }
        }
    }
    if refused.is_empty() { Ok(granted) } else { Err(refused) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(toml: &str) -> PluginInstance {
        let text = format!(
            "[pipeline]\nname = \"t\"\n[sinks.s]\nplugin = \"x\"\n[sources.src]\nplugin = \"directory\"\n{toml}"
        );
        orchestrator_config::parse(&text, Path::new("t.toml")).unwrap().sources.remove(0)
    }

    #[test]
    fn config_values_grant_and_everything_else_needs_allow() {
        let inst = instance(
            "path = \"/data/docs\"\ntoken = { env = \"T\" }\nallow = { read = [\"/etc/ssl\"], reveal = [\"token\"] }\n",
        );
        let ok = decide(
            &inst,
            &[
                Want::ReadPath("/data/docs".into()),
                Want::ReadPath("/data/docs/sub".into()),
                Want::ReadPath("/etc/ssl/certs".into()),
                Want::RevealSecret("token".into()),
            ],
        )
        .unwrap();
        assert_eq!(ok.read.len(), 3);
        assert!(ok.reveal.contains("token"));

        let refused = decide(
            &inst,
            &[
                Want::ReadPath("/etc".into()),
                Want::ReadPath("/data/docs/../../etc".into()),
                Want::ReadPath("/data/docsx".into()),
                Want::RevealSecret("nope".into()),
                Want::Exec("pg_dump".into()),
                Want::Other(("teleport".into(), "moon".into())),
            ],
        )
        .unwrap_err();
        assert_eq!(refused.len(), 6, "{refused:?}");
    }

    #[test]
    fn reveal_always_needs_allow() {
        let inst = instance("path = \"/d\"\ntoken = { env = \"T\" }\n");
        assert!(decide(&inst, &[Want::RevealSecret("token".into())]).is_err());
    }
}
