//! Deciding what a plugin may use: what it wants (from `validate`) against
//! what its configuration and its `allow` table grant.
//!
//! A want is granted by the plugin's own configuration when its target is one
//! of the configuration's string values (or, for paths and URLs, lies under
//! one): the directory source may read the `path` the user wrote. Anything
//! else must be listed under `allow`. Revealing a secret and running programs
//! always need `allow`.
//!
//! A `connect("host:port")` is also granted by a table with that `host` and
//! `port` (or no `port` and a port below 1024, the protocol's default);
//! `restore --to URL` grants the URL's server.

use crate::bindings::Want;
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
pub fn config_values(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    config_strings(value, &mut out);
    out
}

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

/// The `host:port` endpoints a configuration names by a `host` key and the
/// `port` beside it (a number or a string), in any table. A table with a
/// `host` and no `port` names the host on every well-known port (below
/// 1024): the plugin uses its protocol's default port then (993 for IMAP
/// with TLS, 143 for STARTTLS).
fn config_endpoint(value: &serde_json::Value, want: &str) -> bool {
    match value {
        serde_json::Value::Array(a) => a.iter().any(|v| config_endpoint(v, want)),
        serde_json::Value::Object(o) => {
            let here = o.get("host").and_then(|h| h.as_str()).is_some_and(|host| {
                let Some((want_host, want_port)) = want.rsplit_once(':') else { return false };
                let want_host = want_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(want_host);
                let Ok(want_port) = want_port.parse::<u16>() else { return false };
                if !host.eq_ignore_ascii_case(want_host) {
                    return false;
                }
                match o.get("port") {
                    None => want_port < 1024,
                    Some(serde_json::Value::Number(n)) => n.as_u64() == Some(u64::from(want_port)),
                    Some(serde_json::Value::String(p)) => p.parse::<u16>().ok() == Some(want_port),
                    Some(_) => false,
                }
            });
            here || o.values().any(|v| config_endpoint(v, want))
        }
        _ => false,
    }
}

/// The `host:port` endpoints a URL given on the command line (`restore --to
/// imap://user@host[:port]`) names: its port, or without one the scheme's
/// conventional ports (`imap`: 993 and 143, for TLS and STARTTLS).
pub fn url_endpoints(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else { return Vec::new() };
    let authority = rest.split('/').next().unwrap_or("");
    let server = authority.rsplit_once('@').map_or(authority, |(_, s)| s);
    let (host, port) = if let Some(v6) = server.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, after)) => (format!("[{h}]"), after.strip_prefix(':')),
            None => return Vec::new(),
        }
    } else {
        match server.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (server.to_string(), None),
        }
    };
    if host.is_empty() {
        return Vec::new();
    }
    let ports: Vec<u16> = match port {
        Some(p) => p.parse().ok().into_iter().collect(),
        None => match scheme.to_ascii_lowercase().as_str() {
            "imap" => vec![993, 143],
            "imaps" => vec![993],
            _ => Vec::new(),
        },
    };
    ports.into_iter().map(|p| format!("{host}:{p}")).collect()
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
                if strings.iter().chain(&allow.connect).any(|s| s == endpoint)
                    || config_endpoint(&instance.config, endpoint)
                {
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
    fn connect_is_granted_by_host_and_port_in_the_config() {
        let inst = instance("host = \"mail.example.org\"\nport = 1993\n");
        assert!(decide(&inst, &[Want::Connect("mail.example.org:1993".into())]).is_ok());
        assert!(decide(&inst, &[Want::Connect("mail.example.org:993".into())]).is_err());
        assert!(decide(&inst, &[Want::Connect("other.example.org:1993".into())]).is_err());

        // No port: the protocol's default port, which is below 1024.
        let inst = instance("host = \"mail.example.org\"\n");
        assert!(decide(&inst, &[Want::Connect("mail.example.org:993".into())]).is_ok());
        assert!(decide(&inst, &[Want::Connect("mail.example.org:8080".into())]).is_err());

        let inst = instance("server = { host = \"::1\", port = \"143\" }\n");
        assert!(decide(&inst, &[Want::Connect("[::1]:143".into())]).is_ok());

        let inst = instance("host = \"a\"\nallow = { connect = [\"b:25\"] }\n");
        let granted = decide(&inst, &[Want::Connect("a:143".into()), Want::Connect("b:25".into())]).unwrap();
        assert_eq!(granted.connect, vec!["a:143".to_string(), "b:25".to_string()]);
    }

    #[test]
    fn endpoints_of_restore_urls() {
        assert_eq!(url_endpoints("imap://bob@mail.test:1143"), vec!["mail.test:1143"]);
        assert_eq!(url_endpoints("imap://bob%40x.org@mail.test/"), vec!["mail.test:993", "mail.test:143"]);
        assert_eq!(url_endpoints("imap://bob@[::1]:143"), vec!["[::1]:143"]);
        assert!(url_endpoints("imap://bob@h:x").is_empty());
        assert!(url_endpoints("/tmp/dir").is_empty());
    }

    #[test]
    fn reveal_always_needs_allow() {
        let inst = instance("path = \"/d\"\ntoken = { env = \"T\" }\n");
        assert!(decide(&inst, &[Want::RevealSecret("token".into())]).is_err());
    }
}
