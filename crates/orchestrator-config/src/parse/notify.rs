//! `[notify.NAME]` tables: the common keys (`kind`, `on`, `sources`,
//! `timeout`) and each kind's own.

use super::{Entry, NAME_RULE, Parser, integer, type_name, valid_name};
use crate::{EmailSettings, EmailTls, Notifier, NotifierKind, NotifyEvent, Setting};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

const KINDS: &str = "healthchecks, webhook, ntfy, email, command";

/// The keys each kind takes besides the common ones.
fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "healthchecks" => &["url"],
        "webhook" => &["url", "token"],
        "ntfy" => &["url", "token", "priority"],
        "email" => &["host", "port", "tls", "user", "password", "from", "to", "ca_file"],
        "command" => &["program", "args"],
        _ => return None,
    })
}

/// A table's keys with their values, by name.
type Keys<'t, 'i> = BTreeMap<&'t str, &'t Spanned<DeValue<'i>>>;

impl Parser<'_> {
    /// Every `[notify.NAME]` table, in file order; wrong ones are reported
    /// and left out.
    pub(super) fn notifiers(&mut self, (key, value): Entry<'_, '_>) -> Vec<Notifier> {
        let DeValue::Table(table) = value.get_ref() else {
            let message = format!("expected tables like [notify.NAME], found {}", type_name(value.get_ref()));
            self.error(value.span(), key.get_ref(), message);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, body) in table.iter() {
            let name_str = name.get_ref().to_string();
            let full = format!("notify.{name_str}");
            let name_ok = valid_name(&name_str);
            if !name_ok {
                self.error(name.span(), &full, format!("`{name_str}` is not a valid name: {NAME_RULE}"));
            }
            let Some(body_table) = self.sub_table(body, &full) else { continue };
            let parsed = self.notifier(&name_str, name.span(), body_table, &full);
            out.extend(parsed.filter(|_| name_ok));
        }
        out
    }

    fn notifier(&mut self, name: &str, header: Range<usize>, table: &DeTable<'_>, full: &str) -> Option<Notifier> {
        let errors_before = self.errors.len();
        let kind_word = match table.get("kind") {
            Some(v) => match self.string(v, &format!("{full}.kind")) {
                Some(k) if kind_keys(&k).is_some() => Some(k),
                Some(k) => {
                    self.error(v.span(), &format!("{full}.kind"), format!("`{k}` is not a kind (kinds: {KINDS})"));
                    None
                }
                None => None,
            },
            None => {
                self.error_at_header(&header, full, format!("missing key `kind` (one of: {KINDS})"));
                None
            }
        };
        let own = kind_word.as_deref().and_then(kind_keys).unwrap_or(&[]);
        // healthchecks raises its alarm when success pings stop coming, so it
        // hears every event; everything else hears of failures.
        let on = match kind_word.as_deref() {
            Some("healthchecks") => vec![NotifyEvent::Start, NotifyEvent::Success, NotifyEvent::Failure],
            _ => vec![NotifyEvent::Failure],
        };
        let mut notifier = Notifier {
            name: name.to_string(),
            on,
            sources: Vec::new(),
            timeout: Duration::from_secs(30),
            kind: NotifierKind::Command { program: PathBuf::new(), args: Vec::new() },
            header_line: self.line(&header),
        };
        let mut keys = Keys::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            let path = format!("{full}.{key}");
            match key {
                "kind" => {}
                "on" => notifier.on = self.events(v, &path),
                "sources" => notifier.sources = self.inputs(v, &path),
                "timeout" => {
                    let Some(s) = self.string(v, &path) else { continue };
                    match crate::parse_interval(&s) {
                        Ok(d) if !d.is_zero() => notifier.timeout = d,
                        Ok(_) => self.error(v.span(), &path, "expected an interval longer than 0s"),
                        Err(e) => self.error(v.span(), &path, e),
                    }
                }
                _ if own.contains(&key) => {
                    keys.insert(key, v);
                }
                _ if kind_word.is_some() => {
                    let expected = ["kind", "on", "sources", "timeout"].iter().chain(own).copied();
                    let message = format!(
                        "unknown key for kind `{}` (expected one of: {})",
                        kind_word.as_deref().unwrap_or(""),
                        expected.collect::<Vec<_>>().join(", ")
                    );
                    self.error(k.span(), &path, message);
                }
                // Without a valid kind, its keys cannot be judged.
                _ => {}
            }
        }
        let kind = match kind_word.as_deref() {
            Some("healthchecks") => {
                self.url_setting(&keys, full, &header).map(|url| NotifierKind::Healthchecks { url })
            }
            Some("webhook") => {
                let token = self.optional_setting(&keys, "token", full);
                self.url_setting(&keys, full, &header).map(|url| NotifierKind::Webhook { url, token })
            }
            Some("ntfy") => {
                let token = self.optional_setting(&keys, "token", full);
                let priority = keys.get("priority").and_then(|v| match integer(v.get_ref()) {
                    Some(n @ 1..=5) => Some(n as u8),
                    _ => {
                        let found = self.shown(v);
                        self.error(v.span(), &format!("{full}.priority"), format!("expected 1 to 5, found {found}"));
                        None
                    }
                });
                self.url_setting(&keys, full, &header).map(|url| NotifierKind::Ntfy { url, token, priority })
            }
            Some("email") => self.email(&keys, full, &header).map(NotifierKind::Email),
            Some("command") => self.command(&keys, full, &header),
            _ => None,
        };
        if let Some(kind) = kind {
            notifier.kind = kind;
        }
        (self.errors.len() == errors_before).then_some(notifier)
    }

    /// `on`: a non-empty list of start, success, failure.
    fn events(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<NotifyEvent> {
        let mut out = Vec::new();
        for (i, word, span) in self.strings(v, key) {
            let event = match word.as_str() {
                "start" => NotifyEvent::Start,
                "success" => NotifyEvent::Success,
                "failure" => NotifyEvent::Failure,
                _ => {
                    let message = format!("`{word}` is not an event (events: start, success, failure)");
                    self.error(span, &format!("{key}[{i}]"), message);
                    continue;
                }
            };
            if !out.contains(&event) {
                out.push(event);
            }
        }
        if out.is_empty() && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) {
            self.error(v.span(), key, "expected at least one of: start, success, failure");
        }
        out
    }

    /// A string or a secret reference.
    fn setting(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Setting> {
        match v.get_ref() {
            DeValue::String(s) => Some(Setting::Plain(s.to_string())),
            DeValue::Table(t) if t.contains_key("env") || t.contains_key("file") => {
                self.secret_source(v, t, key).map(Setting::Secret)
            }
            other => {
                let message = format!(
                    "expected a string or a secret {{ env = \"NAME\" }} / {{ file = \"path\" }}, found {}",
                    type_name(other)
                );
                self.error(v.span(), key, message);
                None
            }
        }
    }

    fn optional_setting(&mut self, keys: &Keys<'_, '_>, name: &str, full: &str) -> Option<Setting> {
        keys.get(name).and_then(|v| self.setting(v, &format!("{full}.{name}")))
    }

    /// `url`, required; an inline one must be http(s).
    fn url_setting(&mut self, keys: &Keys<'_, '_>, full: &str, header: &Range<usize>) -> Option<Setting> {
        let Some(v) = keys.get("url") else {
            self.error_at_header(header, full, "missing key `url`");
            return None;
        };
        let key = format!("{full}.url");
        let setting = self.setting(v, &key)?;
        if let Setting::Plain(url) = &setting
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            self.error(v.span(), &key, "expected an https:// URL (http:// only to this machine)");
            return None;
        }
        Some(setting)
    }

    fn required_string(
        &mut self,
        keys: &Keys<'_, '_>,
        name: &str,
        full: &str,
        header: &Range<usize>,
    ) -> Option<String> {
        match keys.get(name) {
            Some(v) => self.string(v, &format!("{full}.{name}")),
            None => {
                self.error_at_header(header, full, format!("missing key `{name}`"));
                None
            }
        }
    }

    fn email(&mut self, keys: &Keys<'_, '_>, full: &str, header: &Range<usize>) -> Option<EmailSettings> {
        let host = self.required_string(keys, "host", full, header);
        let from = self.required_string(keys, "from", full, header);
        let tls = match keys.get("tls") {
            None => Some(EmailTls::Starttls),
            Some(v) => match self.string(v, &format!("{full}.tls")).as_deref() {
                Some("starttls") => Some(EmailTls::Starttls),
                Some("tls") => Some(EmailTls::Tls),
                Some("none") => Some(EmailTls::None),
                Some(other) => {
                    let message = format!("`{other}` is not a TLS mode (modes: starttls, tls, none)");
                    self.error(v.span(), &format!("{full}.tls"), message);
                    None
                }
                None => None,
            },
        };
        let port = keys.get("port").and_then(|v| match integer(v.get_ref()) {
            Some(n @ 1..=65535) => Some(n as u16),
            _ => {
                let found = self.shown(v);
                self.error(v.span(), &format!("{full}.port"), format!("expected a port 1 to 65535, found {found}"));
                None
            }
        });
        let user = keys.get("user").and_then(|v| self.string(v, &format!("{full}.user")));
        let password = self.optional_setting(keys, "password", full);
        if password.is_some() && user.is_none() {
            self.error_at_header(header, full, "`password` needs `user`");
        }
        let to = match keys.get("to") {
            Some(v) => {
                let to: Vec<String> = self.strings(v, &format!("{full}.to")).into_iter().map(|(_, s, _)| s).collect();
                if to.is_empty() {
                    self.error(v.span(), &format!("{full}.to"), "expected at least one address");
                }
                to
            }
            None => {
                self.error_at_header(header, full, "missing key `to` (a list of addresses)");
                Vec::new()
            }
        };
        for (key, address) in [("from", from.as_deref())].into_iter().chain(to.iter().map(|a| ("to", Some(a.as_str()))))
        {
            if let Some(a) = address
                && !plausible_address(a)
            {
                let span = keys.get(key).map(|v| v.span()).unwrap_or(header.clone());
                self.error(span, &format!("{full}.{key}"), format!("`{a}` is not a mail address (name@domain)"));
            }
        }
        let ca_file =
            keys.get("ca_file").and_then(|v| self.string(v, &format!("{full}.ca_file"))).map(|p| self.resolve(&p));
        let tls = tls?;
        let port = port.unwrap_or(match tls {
            EmailTls::Starttls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        });
        Some(EmailSettings { host: host?, port, tls, user, password, from: from?, to, ca_file })
    }

    fn command(&mut self, keys: &Keys<'_, '_>, full: &str, header: &Range<usize>) -> Option<NotifierKind> {
        let args = match keys.get("args") {
            Some(v) => self.strings(v, &format!("{full}.args")).into_iter().map(|(_, s, _)| s).collect(),
            None => Vec::new(),
        };
        let program = self.required_string(keys, "program", full, header)?;
        if !program.starts_with('/') {
            let span = keys.get("program").map(|v| v.span()).unwrap_or(header.clone());
            let message = format!("`{program}` is not an absolute path: name the program exactly (no PATH search)");
            self.error(span, &format!("{full}.program"), message);
            return None;
        }
        Some(NotifierKind::Command { program: PathBuf::from(program), args })
    }
}

/// Something `@` something with a dot after it and no spaces or brackets:
/// enough to catch a misplaced value; the server judges the rest.
fn plausible_address(a: &str) -> bool {
    a.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !a.contains(|c: char| c.is_whitespace() || "<>,;".contains(c))
    })
}
