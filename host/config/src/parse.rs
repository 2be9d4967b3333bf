//! Walking the spanned TOML document into a [`Pipeline`], collecting every
//! problem with its position.

use crate::{
    Allow, ConfigError, ConfigErrors, Limits, Pipeline, PluginInstance, PluginKind, PluginRef, SecretRef, SecretSource,
    Sink,
};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

type Entry<'t, 'i> = (&'t Spanned<std::borrow::Cow<'i, str>>, &'t Spanned<DeValue<'i>>);

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "float",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "table",
    }
}

fn integer(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// A valid name for a pipeline, source or sink: it becomes a directory name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(crate) struct Parser<'a> {
    text: &'a str,
    file: &'a Path,
    dir: PathBuf,
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Parser { text, file, dir, line_starts, errors: Vec::new() }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset.min(self.text.len())).map(|s| s.chars().count()).unwrap_or(0) + 1;
        (line, column)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        let key = (!key.is_empty()).then(|| key.to_string());
        self.errors.push(ConfigError { file: self.file.to_path_buf(), line, column, key, message: message.into() });
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        if path.is_absolute() { path } else { self.dir.join(path) }
    }

    pub(crate) fn run(mut self) -> Result<Pipeline, ConfigErrors> {
        let text = self.text;
        let doc = match DeTable::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().lines().next().unwrap_or("invalid TOML").to_string();
                self.error(span, "", format!("invalid TOML: {message}"));
                return Err(ConfigErrors(self.errors));
            }
        };
        let root = doc.get_ref();
        let mut pipeline = None;
        let mut sources = Vec::new();
        let mut sinks = Vec::new();
        let mut seen_sources = false;
        let mut seen_sinks = false;
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "pipeline" => pipeline = self.pipeline_table((key, value)),
                "sources" => {
                    seen_sources = true;
                    sources = self.instances((key, value), PluginKind::Source);
                }
                "sinks" => {
                    seen_sinks = true;
                    sinks = self.instances((key, value), PluginKind::Sink);
                }
                other => self.error(key.span(), other, "unknown key (expected one of: pipeline, sources, sinks)"),
            }
        }
        let end = text.len()..text.len();
        if pipeline.is_none() && !root.contains_key("pipeline") {
            self.error(0..0, "pipeline", "missing table [pipeline] with at least `name`");
        }
        if !seen_sources
            || (sources.is_empty()
                && !self.errors.iter().any(|e| e.key.as_deref().is_some_and(|k| k.starts_with("sources"))))
        {
            self.error(end.clone(), "sources", "the pipeline has no sources; add a [sources.NAME] table");
        }
        if !seen_sinks
            || (sinks.is_empty()
                && !self.errors.iter().any(|e| e.key.as_deref().is_some_and(|k| k.starts_with("sinks"))))
        {
            self.error(end, "sinks", "the pipeline has no sinks; add a [sinks.NAME] table");
        }
        let sources: Vec<PluginInstance> = sources.into_iter().map(|(i, _)| i).collect();
        // Every declared source, even one whose own table has errors, so an
        // input naming it is not reported as unknown.
        let source_names: Vec<String> = match root.get("sources").map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => t.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
            _ => Vec::new(),
        };
        let sinks: Vec<Sink> = sinks
            .into_iter()
            .map(|(instance, keys)| {
                let inputs = self.inputs(&instance.name, keys.inputs, &source_names);
                Sink { instance, target: keys.target, inputs }
            })
            .collect();
        match (pipeline, self.errors.is_empty()) {
            (Some(p), true) => Ok(Pipeline { sources, sinks, ..p }),
            _ => {
                self.errors.sort_by_key(|e| (e.line, e.column));
                Err(ConfigErrors(self.errors))
            }
        }
    }

    fn pipeline_table(&mut self, (key, value): Entry<'_, '_>) -> Option<Pipeline> {
        let DeValue::Table(table) = value.get_ref() else {
            self.error(value.span(), "pipeline", format!("expected a table, found {}", type_name(value.get_ref())));
            return None;
        };
        let mut p = Pipeline {
            file: self.file.to_path_buf(),
            name: String::new(),
            cache_dir: None,
            concurrency: 2,
            schedule: None,
            timezone: None,
            sources: Vec::new(),
            sinks: Vec::new(),
        };
        let mut ok = true;
        let mut timezone_span = None;
        for (k, v) in table.iter() {
            let name = k.get_ref().as_ref();
            let full = format!("pipeline.{name}");
            match name {
                "name" => match self.string(v, &full) {
                    Some(s) if valid_name(&s) => p.name = s,
                    Some(s) => {
                        ok = false;
                        self.error(v.span(), &full, format!("`{s}` is not a valid name: use lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 64 characters"));
                    }
                    None => ok = false,
                },
                "cache_dir" => p.cache_dir = self.string(v, &full).map(|s| self.resolve(&s)),
                "concurrency" => match integer(v.get_ref()) {
                    Some(n) if n >= 1 => p.concurrency = n as usize,
                    _ => {
                        ok = false;
                        self.error(v.span(), &full, format!("expected an integer >= 1, found {}", self.shown(v)));
                    }
                },
                "schedule" => match self.string(v, &full) {
                    Some(s) if s.split_whitespace().count() == 5 => p.schedule = Some(s),
                    Some(s) => {
                        ok = false;
                        self.error(
                            v.span(),
                            &full,
                            format!("`{s}` is not a cron expression with 5 fields (minute hour day month weekday)"),
                        );
                    }
                    None => ok = false,
                },
                "timezone" => {
                    timezone_span = Some(v.span());
                    p.timezone = self.string(v, &full);
                }
                other => {
                    ok = false;
                    self.error(
                        k.span(),
                        &full,
                        format!(
                            "unknown key `{other}` (expected one of: name, cache_dir, concurrency, schedule, timezone)"
                        ),
                    );
                }
            }
        }
        if let (Some(span), None) = (timezone_span, &p.schedule) {
            ok = false;
            self.error(span, "pipeline.timezone", "a timezone needs a schedule");
        }
        if p.name.is_empty() && !table.contains_key("name") {
            ok = false;
            self.error(key.span(), "pipeline", "missing key `name`");
        }
        ok.then_some(p)
    }

    fn shown(&self, v: &Spanned<DeValue<'_>>) -> String {
        match v.get_ref() {
            DeValue::String(s) => format!("string \"{s}\""),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => self.text[v.span()].to_string(),
            other => type_name(other).to_string(),
        }
    }

    fn string(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(v.span(), key, format!("expected a string, found {}", type_name(other)));
                None
            }
        }
    }

    fn strings(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<(String, Range<usize>)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{key}[{i}]")).map(|s| (s, item.span())))
                .collect(),
            other => {
                self.error(v.span(), key, format!("expected an array of strings, found {}", type_name(other)));
                Vec::new()
            }
        }
    }

    fn instances(&mut self, (key, value): Entry<'_, '_>, kind: PluginKind) -> Vec<(PluginInstance, SinkKeys)> {
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
            if !valid_name(&name_str) {
                self.error(name.span(), &full, format!("`{name_str}` is not a valid name: use lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 64 characters"));
                continue;
            }
            let DeValue::Table(body_table) = body.get_ref() else {
                self.error(body.span(), &full, format!("expected a table, found {}", type_name(body.get_ref())));
                continue;
            };
            if let Some(parsed) = self.instance(&name_str, name.span(), body_table, kind, &full) {
                out.push(parsed);
            }
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
    ) -> Option<(PluginInstance, SinkKeys)> {
        let errors_before = self.errors.len();
        let mut plugin = None;
        let mut allow = Allow::default();
        let mut limits = Limits::default();
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
                ("limits", _) => limits = self.limits(v, &path),
                ("target", PluginKind::Sink) => match self.string(v, &path) {
                    Some(t) if t.contains("://") => sink_keys.target = Some(t),
                    Some(t) => self.error(
                        v.span(),
                        &path,
                        format!(
                            "`{t}` is not a URL (examples: file:///backups, sftp://user@host/path, s3://bucket/prefix)"
                        ),
                    ),
                    None => {}
                },
                ("inputs", PluginKind::Sink) => sink_keys.inputs = Some((self.strings(v, &path), v.span())),
                _ => {
                    let json = self.json_of(v, &key, &path, &mut secrets);
                    config.insert(key, json);
                }
            }
        }
        if !table.contains_key("plugin") {
            self.error(
                header.clone(),
                full,
                "missing key `plugin` (a built-in name like \"directory\", or { path = \"x.wasm\" })",
            );
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
            header_line: self.line(&header),
            key_lines,
        };
        Some((instance, sink_keys))
    }

    fn plugin_ref(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<PluginRef> {
        match v.get_ref() {
            DeValue::String(s) => {
                let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if ok {
                    Some(PluginRef::Builtin(s.to_string()))
                } else {
                    self.error(v.span(), key, format!("`{s}` is not a built-in plugin name; a file is written {{ path = \"plugin.wasm\", sha256 = \"…\" }}"));
                    None
                }
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
                        other => {
                            self.error(k.span(), &sub, format!("unknown key `{other}` (expected one of: path, sha256)"))
                        }
                    }
                }
                if path.is_none() && !t.contains_key("path") {
                    self.error(v.span(), key, "missing key `path`");
                }
                path.map(|path| PluginRef::File { path, sha256 })
            }
            other => {
                self.error(
                    v.span(),
                    key,
                    format!("expected a built-in name or {{ path = \"…\" }}, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn sub_table<'t, 'i>(&mut self, v: &'t Spanned<DeValue<'i>>, key: &str) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(v.span(), key, format!("expected a table, found {}", type_name(other)));
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
                other => {
                    self.error(
                        k.span(),
                        &sub,
                        format!("unknown key `{other}` (expected one of: read, reveal, connect, http, exec)"),
                    );
                    continue;
                }
            };
            let values: Vec<String> = self.strings(item, &sub).into_iter().map(|(s, _)| s).collect();
            *list = values;
        }
        allow
    }

    fn limits(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Limits {
        let mut limits = Limits::default();
        let Some(t) = self.sub_table(v, key) else { return limits };
        for (k, item) in t.iter() {
            let sub = format!("{key}.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "memory_mb" => match integer(item.get_ref()) {
                    Some(n) if (16..=65536).contains(&n) => limits.memory_mb = n as u64,
                    _ => self.error(
                        item.span(),
                        &sub,
                        format!("expected an integer between 16 and 65536, found {}", self.shown(item)),
                    ),
                },
                name @ ("call_timeout" | "timeout") => {
                    let Some(s) = self.string(item, &sub) else { continue };
                    match crate::parse_interval(&s) {
                        Ok(d) if name == "timeout" => limits.timeout = Some(d),
                        Ok(d) => limits.call_timeout = d,
                        Err(e) => self.error(item.span(), &sub, e),
                    }
                }
                other => self.error(
                    k.span(),
                    &sub,
                    format!("unknown key `{other}` (expected one of: memory_mb, call_timeout, timeout)"),
                ),
            }
        }
        limits
    }

    /// Convert a plugin's value to JSON, taking secret references out.
    fn json_of(&mut self, v: &Spanned<DeValue<'_>>, key_path: &str, full: &str, secrets: &mut Vec<SecretRef>) -> Json {
        match v.get_ref() {
            DeValue::String(s) => Json::String(s.to_string()),
            DeValue::Integer(_) => integer(v.get_ref()).map(Json::from).unwrap_or_else(|| {
                self.error(v.span(), full, "integer out of range");
                Json::Null
            }),
            DeValue::Float(f) => match f.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Json::Number(n),
                None => {
                    self.error(v.span(), full, "this float cannot be passed to a plugin (nan and inf are not allowed)");
                    Json::Null
                }
            },
            DeValue::Boolean(b) => Json::Bool(*b),
            DeValue::Datetime(d) => Json::String(d.to_string()),
            DeValue::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.json_of(item, &format!("{key_path}.{i}"), &format!("{full}[{i}]"), secrets))
                    .collect(),
            ),
            DeValue::Table(t) => {
                if t.contains_key("env") || t.contains_key("file") {
                    return self.secret(v, t, key_path, full, secrets);
                }
                let mut map = serde_json::Map::new();
                for (k, item) in t.iter() {
                    let name = k.get_ref().to_string();
                    let json = self.json_of(item, &format!("{key_path}.{name}"), &format!("{full}.{name}"), secrets);
                    map.insert(name, json);
                }
                Json::Object(map)
            }
        }
    }

    fn secret(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        t: &DeTable<'_>,
        key_path: &str,
        full: &str,
        secrets: &mut Vec<SecretRef>,
    ) -> Json {
        let mut entries = t.iter();
        let only = entries.next().filter(|_| t.len() == 1);
        let Some((k, item)) = only else {
            self.error(v.span(), full, "a secret reference has exactly one key, `env` or `file`");
            return Json::Null;
        };
        let Some(value) = self.string(item, &format!("{full}.{}", k.get_ref())) else { return Json::Null };
        let source =
            if k.get_ref() == "env" { SecretSource::Env(value) } else { SecretSource::File(self.resolve(&value)) };
        secrets.push(SecretRef { key: key_path.to_string(), source });
        serde_json::json!({ "secret": key_path })
    }

    fn inputs(&mut self, sink: &str, inputs: Option<Inputs>, sources: &[String]) -> Vec<String> {
        let Some((inputs, _)) = inputs else { return sources.to_vec() };
        let mut out: Vec<String> = Vec::new();
        for (i, (name, span)) in inputs.into_iter().enumerate() {
            let key = format!("sinks.{sink}.inputs[{i}]");
            if out.contains(&name) {
                self.error(span, &key, format!("source `{name}` is listed twice"));
            } else if !sources.contains(&name) {
                self.error(span, &key, format!("there is no source `{name}` (sources: {})", sources.join(", ")));
            } else {
                out.push(name);
            }
        }
        out
    }
}

/// Names listed in a sink's `inputs`, each with its span, and the array's span.
type Inputs = (Vec<(String, Range<usize>)>, Range<usize>);

/// The host's keys that only sink tables have.
#[derive(Debug, Default)]
pub(crate) struct SinkKeys {
    target: Option<String>,
    inputs: Option<Inputs>,
}
