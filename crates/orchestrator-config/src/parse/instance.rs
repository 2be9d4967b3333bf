//! `[sources.NAME]` and `[sinks.NAME]` tables: the host's keys (`plugin`,
//! `allow`, `limits`; for sources `schedule`; for sinks `target`, `inputs`
//! and `storage`) are checked here;
//! every other key is the plugin's and goes to [`Parser::plugin_config`].

use super::{Entry, NAME_RULE, Parser, integer, type_name, valid_name};
use crate::{Allow, Limits, PluginInstance, PluginKind, PluginRef, Sink};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The host's keys that only sink tables have.
#[derive(Debug, Default)]
struct SinkKeys {
    target: Option<String>,
    inputs: Option<Vec<String>>,
    storage: serde_json::Map<String, Json>,
    storage_secrets: Vec<crate::SecretRef>,
}

/// A storage URL starts with a scheme: a letter, then letters, digits, `+`,
/// `-` or `.`, then `://`.
fn has_scheme(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A built-in plugin's name: `[a-z0-9][a-z0-9-]*`.
fn valid_builtin(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Parser<'_> {
    /// Every table under `[sources]` or `[sinks]`, in file order; tables with
    /// problems are reported and left out. Sources come back as sinks too
    /// (without target and with every source as input) to share the code;
    /// the caller keeps only their instance.
    pub(super) fn instances(&mut self, (key, value): Entry<'_, '_>, kind: PluginKind) -> Vec<Sink> {
        let table_key = key.get_ref().to_string();
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                value.span(),
                &table_key,
                format!("expected tables like [{table_key}.NAME], found {}", type_name(value.get_ref())),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, body) in table.iter() {
            let name_str = name.get_ref().to_string();
            let full = format!("{table_key}.{name_str}");
            let name_ok = valid_name(&name_str);
            if !name_ok {
                self.error(name.span(), &full, format!("`{name_str}` is not a valid name: {NAME_RULE}"));
            }
            let DeValue::Table(body_table) = body.get_ref() else {
                self.error(body.span(), &full, format!("expected a table, found {}", type_name(body.get_ref())));
                continue;
            };
            // Checked even under a wrong name, so its problems show in this pass.
            let parsed = self.instance(&name_str, name.span(), body_table, kind, &full);
            out.extend(parsed.filter(|_| name_ok));
        }
        out
    }

    fn instance(
        &mut self,
        name: &str,
        header: Range<usize>,
        table: &DeTable<'_>,
        kind: PluginKind,
        full: &str,
    ) -> Option<Sink> {
        let errors_before = self.errors.len();
        let mut plugin = None;
        let mut allow = Allow::default();
        let mut limits = Limits::default();
        let mut schedule = None;
        let mut sink_keys = SinkKeys::default();
        let mut config = serde_json::Map::new();
        let mut secrets = Vec::new();
        let mut key_lines = BTreeMap::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().to_string();
            key_lines.insert(key.clone(), self.line(&k.span()));
            let path = format!("{full}.{key}");
            match (key.as_str(), kind) {
                ("plugin", _) => plugin = self.plugin_ref(v, &path),
                ("allow", _) => allow = self.allow(v, &path),
                ("limits", _) => limits = self.limits(v, &path, kind),
                ("schedule", PluginKind::Source) => schedule = self.schedule(v, &path),
                ("target", PluginKind::Sink) => match self.string(v, &path) {
                    // rclone's remotes (`rclone:b2:bucket/x`) have no `//`.
                    Some(t) if has_scheme(&t) || t.starts_with("rclone:") => sink_keys.target = Some(t),
                    Some(t) => self.error(
                        v.span(),
                        &path,
                        format!(
                            "`{t}` is not a URL (examples: file:///backups, sftp://user@host/path, s3://bucket/prefix, \
                             rclone:remote:path)"
                        ),
                    ),
                    None => {}
                },
                ("inputs", PluginKind::Sink) => sink_keys.inputs = Some(self.inputs(v, &path)),
                ("storage", PluginKind::Sink) => match v.get_ref() {
                    DeValue::Table(_) => {
                        if let Json::Object(table) = self.plugin_config(v, &key, &path, &mut sink_keys.storage_secrets)
                        {
                            sink_keys.storage = table;
                        }
                    }
                    other => self.error(
                        v.span(),
                        &path,
                        format!("expected a table of the target's settings, found {}", type_name(other)),
                    ),
                },
                _ => {
                    let json = self.plugin_config(v, &key, &path, &mut secrets);
                    config.insert(key, json);
                }
            }
        }
        if !table.contains_key("plugin") {
            self.error_at_header(&header, full, "missing key `plugin`");
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let instance = PluginInstance {
            name: name.to_string(),
            kind,
            plugin: plugin?,
            config: Json::Object(config),
            secrets,
            allow,
            limits,
            schedule,
            header_line: self.line(&header),
            key_lines,
        };
        let inputs = sink_keys.inputs.unwrap_or_else(|| self.source_names.clone());
        Some(Sink {
            instance,
            target: sink_keys.target,
            storage: sink_keys.storage,
            storage_secrets: sink_keys.storage_secrets,
            inputs,
        })
    }

    fn plugin_ref(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<PluginRef> {
        match v.get_ref() {
            DeValue::String(s) if valid_builtin(s) => Some(PluginRef::Builtin(s.to_string())),
            DeValue::String(s) => {
                self.error(
                    v.span(),
                    key,
                    format!(
                        "`{s}` is not a built-in plugin name ([a-z0-9][a-z0-9-]*); \
                         a component file is written {{ path = \"plugin.wasm\", sha256 = \"…\" }}"
                    ),
                );
                None
            }
            DeValue::Table(t) => {
                let (mut path, mut sha256) = (None, None);
                for (k, item) in t.iter() {
                    let sub = format!("{key}.{}", k.get_ref());
                    match k.get_ref().as_ref() {
                        "path" => path = self.string(item, &sub).map(|p| self.resolve(&p)),
                        "sha256" => match self.string(item, &sub) {
                            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                                sha256 = Some(h.to_ascii_lowercase())
                            }
                            Some(_) => self.error(
                                item.span(),
                                &sub,
                                "expected 64 hexadecimal digits (the output of `sha256sum plugin.wasm`)",
                            ),
                            None => {}
                        },
                        _ => self.error(k.span(), &sub, "unknown key (expected one of: path, sha256)"),
                    }
                }
                if !t.contains_key("path") {
                    self.error(v.span(), key, "missing key `path`");
                }
                path.map(|path| PluginRef::File { path, sha256 })
            }
            other => {
                self.error(
                    v.span(),
                    key,
                    format!("expected a built-in plugin name or {{ path = \"…\" }}, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn allow(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Allow {
        let mut allow = Allow::default();
        let Some(t) = self.sub_table(v, key) else { return allow };
        for (k, item) in t.iter() {
            let sub = format!("{key}.{}", k.get_ref());
            let list = match k.get_ref().as_ref() {
                "read" => &mut allow.read,
                "reveal" => &mut allow.reveal,
                "connect" => &mut allow.connect,
                "http" => &mut allow.http,
                "exec" => &mut allow.exec,
                _ => {
                    self.error(k.span(), &sub, "unknown key (expected one of: read, reveal, connect, http, exec)");
                    continue;
                }
            };
            *list = self.strings(item, &sub).into_iter().map(|(_, s, _)| s).collect();
        }
        allow
    }

    fn limits(&mut self, v: &Spanned<DeValue<'_>>, key: &str, kind: PluginKind) -> Limits {
        let mut limits = Limits::default();
        let Some(t) = self.sub_table(v, key) else { return limits };
        for (k, item) in t.iter() {
            let sub = format!("{key}.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "memory_mb" => match integer(item.get_ref()) {
                    Some(n @ 16..=65536) => limits.memory_mb = n.unsigned_abs(),
                    _ => self.error(
                        item.span(),
                        &sub,
                        format!("expected an integer between 16 and 65536, found {}", self.shown(item)),
                    ),
                },
                name @ ("call_timeout" | "timeout") => {
                    let Some(s) = self.string(item, &sub) else { continue };
                    match crate::parse_interval(&s) {
                        Ok(d) if d.is_zero() => self.error(item.span(), &sub, "expected an interval longer than 0s"),
                        Ok(d) if name == "timeout" => limits.timeout = Some(d),
                        Ok(d) => limits.call_timeout = d,
                        Err(e) => self.error(item.span(), &sub, e),
                    }
                }
                "upload_rate" | "upload_concurrency" if kind != PluginKind::Sink => {
                    self.error(k.span(), &sub, "only a sink uploads; set it on the sink")
                }
                "upload_rate" => {
                    let Some(s) = self.string(item, &sub) else { continue };
                    match crate::interval::parse_rate(&s) {
                        Ok(rate) => limits.upload_rate = Some(rate),
                        Err(e) => self.error(item.span(), &sub, e),
                    }
                }
                "upload_concurrency" => match integer(item.get_ref()) {
                    Some(n @ 1..=64) => limits.upload_concurrency = Some(n as u32),
                    _ => self.error(
                        item.span(),
                        &sub,
                        format!("expected an integer between 1 and 64, found {}", self.shown(item)),
                    ),
                },
                _ => self.error(
                    k.span(),
                    &sub,
                    "unknown key (expected one of: memory_mb, call_timeout, timeout, upload_rate, upload_concurrency)",
                ),
            }
        }
        limits
    }

    /// A sink's `inputs`, checked against every declared source (even one
    /// whose table has problems, so it is not reported twice): unknown names
    /// and repeats are reported at the array element.
    pub(super) fn inputs(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, name, span) in self.strings(v, key) {
            let element = format!("{key}[{i}]");
            if out.contains(&name) {
                self.error(span, &element, format!("source `{name}` is listed twice"));
            } else if !self.source_names.contains(&name) {
                let known = self.source_names.join(", ");
                self.error(span, &element, format!("there is no source `{name}` (sources: {known})"));
            } else {
                out.push(name);
            }
        }
        out
    }
}
