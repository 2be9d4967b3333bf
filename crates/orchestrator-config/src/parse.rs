//! Walking the spanned TOML document into a [`Pipeline`], collecting every
//! problem with its position.
//!
//! The walk never stops at the first problem: each table is checked in full
//! and the result is only built when nothing was reported.

mod config;
mod instance;
mod notify;

use crate::{ConfigError, ConfigErrors, Pipeline, PluginInstance, PluginKind};
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A key of a table with its value, both with their spans.
type Entry<'t, 'i> = (&'t Spanned<Cow<'i, str>>, &'t Spanned<DeValue<'i>>);

/// What a value is, for "expected …, found …" messages.
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

/// The value of an integer that fits an `i64`.
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

const NAME_RULE: &str =
    "use lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 64 characters";

/// One pass over one file: the text, where it lives, and what was found wrong.
pub(crate) struct Parser<'a> {
    text: &'a str,
    file: &'a Path,
    dir: PathBuf,
    line_starts: Vec<usize>,
    /// Every source declared, known before any table is walked because
    /// `[sinks]` may come first.
    source_names: Vec<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Parser { text, file, dir, line_starts, source_names: Vec::new(), errors: Vec::new() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset.min(self.text.len())).map(|s| s.chars().count()).unwrap_or(0) + 1;
        (line, column)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    fn push(&mut self, (line, column): (usize, usize), key: &str, message: String) {
        let key = (!key.is_empty()).then(|| key.to_string());
        self.errors.push(ConfigError { file: self.file.to_path_buf(), line, column, key, message });
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.push(self.position(span.start), key, message.into());
    }

    /// An error about a whole table (a missing key): it points at the start
    /// of the line holding the table's name, which is its `[header]` when it
    /// has one.
    fn error_at_header(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span);
        let start = self.line_starts[line - 1];
        let rest = self.text.get(start..).unwrap_or("");
        let column = rest.chars().take_while(|c| *c == ' ' || *c == '\t').count() + 1;
        self.push((line, column), key, message.into());
    }

    /// A path as written, anchored at the pipeline file's directory when relative.
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
                let message = e.message().lines().next().unwrap_or("invalid TOML").trim_end().to_string();
                self.error(span, "", format!("invalid TOML: {message}"));
                return Err(ConfigErrors(self.errors));
            }
        };
        let root = doc.get_ref();
        if let Some(DeValue::Table(t)) = root.get("sources").map(|v| v.get_ref()) {
            self.source_names = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
        }
        let mut pipeline = None;
        let mut sources: Vec<PluginInstance> = Vec::new();
        let mut sinks = Vec::new();
        let mut notify = Vec::new();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "pipeline" => pipeline = self.pipeline_table((key, value)),
                "sources" => {
                    sources = self.instances((key, value), PluginKind::Source).into_iter().map(|s| s.instance).collect()
                }
                "sinks" => sinks = self.instances((key, value), PluginKind::Sink),
                "notify" => notify = self.notifiers((key, value)),
                other => {
                    self.error(key.span(), other, "unknown key (expected one of: pipeline, sources, sinks, notify)")
                }
            }
        }
        self.timezone_needs_a_schedule(root);
        if !root.contains_key("pipeline") {
            self.error(0..0, "pipeline", "missing table [pipeline] with at least `name`");
        }
        self.require_some(
            root,
            "sources",
            sources.is_empty(),
            "the pipeline has no sources; add a [sources.NAME] table",
        );
        self.require_some(root, "sinks", sinks.is_empty(), "the pipeline has no sinks; add a [sinks.NAME] table");
        match (pipeline, self.errors.is_empty()) {
            (Some(p), true) => Ok(Pipeline { sources, sinks, notify, ..p }),
            _ => {
                self.errors.sort_by_key(|e| (e.line, e.column));
                Err(ConfigErrors(self.errors))
            }
        }
    }

    /// Report a `[sources]` or `[sinks]` with nothing in it, unless its
    /// tables are already reported as wrong.
    fn require_some(&mut self, root: &DeTable<'_>, key: &str, empty: bool, message: &str) {
        let reported = self.errors.iter().any(|e| {
            e.key.as_deref().is_some_and(|k| k == key || k.strip_prefix(key).is_some_and(|r| r.starts_with('.')))
        });
        if !empty || reported {
            return;
        }
        match root.get_key_value(key) {
            Some((k, _)) => self.error_at_header(&k.span(), key, message),
            None => self.error(self.text.len()..self.text.len(), key, message),
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
            schedule_jitter: Duration::ZERO,
            catch_up: false,
            metrics_listen: None,
            store_pipeline: false,
            sources: Vec::new(),
            sinks: Vec::new(),
            notify: Vec::new(),
        };
        let errors_before = self.errors.len();
        for (k, v) in table.iter() {
            let name = k.get_ref().as_ref();
            let full = format!("pipeline.{name}");
            match name {
                "name" => match self.string(v, &full) {
                    Some(s) if valid_name(&s) => p.name = s,
                    Some(s) => self.error(v.span(), &full, format!("`{s}` is not a valid name: {NAME_RULE}")),
                    None => {}
                },
                "cache_dir" => p.cache_dir = self.string(v, &full).map(|s| self.resolve(&s)),
                "concurrency" => match integer(v.get_ref()) {
                    Some(n) if n >= 1 => p.concurrency = usize::try_from(n).unwrap_or(usize::MAX),
                    _ => self.error(v.span(), &full, format!("expected an integer >= 1, found {}", self.shown(v))),
                },
                "schedule" => p.schedule = self.schedule(v, &full),
                "timezone" => {
                    p.timezone = self.string(v, &full).filter(|zone| match orchestrator_schedule::time_zone(zone) {
                        Ok(_) => true,
                        Err(e) => {
                            self.error(v.span(), &full, e.to_string());
                            false
                        }
                    })
                }
                "schedule_jitter" => {
                    if let Some(s) = self.string(v, &full) {
                        match orchestrator_schedule::parse_duration(&s) {
                            Ok(d) => p.schedule_jitter = d,
                            Err(e) => self.error(v.span(), &full, e.to_string()),
                        }
                    }
                }
                "catch_up" | "store_pipeline" => match v.get_ref() {
                    DeValue::Boolean(b) if name == "catch_up" => p.catch_up = *b,
                    DeValue::Boolean(b) => p.store_pipeline = *b,
                    other => self.error(v.span(), &full, format!("expected true or false, found {}", type_name(other))),
                },
                "metrics_listen" => {
                    if let Some(s) = self.string(v, &full) {
                        match s.parse::<std::net::SocketAddr>() {
                            Ok(a) => p.metrics_listen = Some(a),
                            Err(_) => self.error(
                                v.span(),
                                &full,
                                format!(
                                    "`{s}` is not an address and port (examples: 127.0.0.1:9898, [::1]:9898, \
                                     0.0.0.0:9898)"
                                ),
                            ),
                        }
                    }
                }
                _ => self.error(
                    k.span(),
                    &full,
                    "unknown key (expected one of: name, cache_dir, concurrency, schedule, timezone, schedule_jitter, \
                     catch_up, metrics_listen, store_pipeline)",
                ),
            }
        }
        if !table.contains_key("name") {
            self.error_at_header(&key.span(), "pipeline", "missing key `name`");
        }
        (self.errors.len() == errors_before).then_some(p)
    }

    /// A `schedule` value: cron, `@daily`…, or `every 6h`.
    fn schedule(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<orchestrator_schedule::Schedule> {
        let text = self.string(v, key)?;
        match orchestrator_schedule::Schedule::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(v.span(), key, e.to_string());
                None
            }
        }
    }

    /// `timezone` says how to read schedules; without any it is a mistake.
    fn timezone_needs_a_schedule(&mut self, root: &DeTable<'_>) {
        fn table<'t, 'i>(v: Option<&'t Spanned<DeValue<'i>>>) -> Option<&'t DeTable<'i>> {
            match v.map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => Some(t),
                _ => None,
            }
        }
        let Some(pipeline) = table(root.get("pipeline")) else { return };
        let Some((_, zone)) = pipeline.get_key_value("timezone") else { return };
        let source_schedules = table(root.get("sources")).is_some_and(|sources| {
            sources.iter().any(|(_, s)| matches!(s.get_ref(), DeValue::Table(t) if t.contains_key("schedule")))
        });
        if !pipeline.contains_key("schedule") && !source_schedules {
            self.error(zone.span(), "pipeline.timezone", "only allowed together with a `schedule`");
        }
    }

    /// What was found instead of a number: its text when it is a number, its
    /// type otherwise.
    fn shown(&self, v: &Spanned<DeValue<'_>>) -> String {
        match v.get_ref() {
            DeValue::Integer(_) | DeValue::Float(_) => self.text[v.span()].to_string(),
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

    /// An array of strings, each with its index and span; wrong elements are
    /// reported and left out.
    fn strings(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<(usize, String, Range<usize>)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{key}[{i}]")).map(|s| (i, s, item.span())))
                .collect(),
            other => {
                self.error(v.span(), key, format!("expected an array of strings, found {}", type_name(other)));
                Vec::new()
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
}
