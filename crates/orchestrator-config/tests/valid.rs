//! The valid UI files, checked precisely: the JSON each plugin receives, the
//! secret references, file order, resolved paths and key lines.

use orchestrator_config::{Allow, PluginRef, SecretRef, SecretSource, parse};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn parse_valid(name: &str) -> orchestrator_config::Pipeline {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/valid").join(name);
    let text = std::fs::read_to_string(input).unwrap();
    parse(&text, Path::new("/etc/orch/pipeline.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn secret(key: &str, source: SecretSource) -> SecretRef {
    SecretRef { key: key.into(), source }
}

#[test]
fn nested_secrets_in_tables_and_arrays() {
    let p = parse_valid("nested-secrets.toml");
    let api = &p.sources[0];
    assert_eq!(api.plugin, PluginRef::File { path: "/etc/orch/plugins/api.wasm".into(), sha256: None });
    assert_eq!(
        api.config,
        json!({
            "auth": { "token": { "secret": "auth.token" } },
            "keys": [{ "secret": "keys.0" }, "plain", [{ "secret": "keys.2.0" }]],
            "servers": [
                { "host": "a.lan", "password": { "secret": "servers.0.password" } },
                { "host": "b.lan" },
            ],
            "login": { "secret": "login" },
        })
    );
    assert_eq!(
        api.secrets,
        vec![
            secret("auth.token", SecretSource::File("/etc/orch/t".into())),
            secret("keys.0", SecretSource::Env("KEY_ONE".into())),
            secret("keys.2.0", SecretSource::Env("DEEP".into())),
            secret("servers.0.password", SecretSource::Env("A_PASSWORD".into())),
            secret("login", SecretSource::File("/run/secrets/login".into())),
        ]
    );
    assert_eq!(api.line_of("servers.0.password"), 10);
    assert_eq!(api.line_of("login"), 17);
    assert_eq!(p.sinks[0].instance.secrets, vec![]);
}

#[test]
fn datetimes_become_rfc3339_text_and_numbers_their_value() {
    let p = parse_valid("datetimes-and-numbers.toml");
    assert_eq!(p.concurrency, 8);
    assert_eq!(
        p.sources[0].config,
        json!({
            "offset": "1979-05-27T07:32:00Z",
            "offset_space": "1979-05-27T07:32:00.5+02:00",
            "local": "1979-05-27T07:32:00",
            "date": "1979-05-27",
            "time": "07:32:00",
            "hex": 16,
            "octal": 15,
            "binary": 3,
            "big": 1_000_000,
            "negative": -5,
            "float": 1000.0,
            "float_underscore": 1000.5,
            "yes": true,
            "nested": { "dotted": { "key": "v" } },
        })
    );
    assert_eq!(p.sources[0].line_of("nested.dotted.key"), 20);
}

#[test]
fn file_order_dotted_and_inline_tables_and_host_keys() {
    let p = parse_valid("sinks-first-dotted-inline.toml");
    assert_eq!(p.name, "order");
    assert_eq!(p.schedule.as_ref().map(|s| s.as_str()), Some("  0 3  * * 1-5 "));
    assert_eq!(p.timezone.as_deref(), Some("Europe/Madrid"));
    assert_eq!(p.cache_dir, Some(PathBuf::from("/etc/orch/../cache")));

    let names: Vec<&str> = p.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let headers: Vec<usize> = p.sources.iter().map(|s| s.header_line).collect();
    assert_eq!(headers, [3, 4, 20]);
    assert_eq!(p.sources[1].limits.timeout, Some(Duration::from_secs(36 * 3600)));
    assert_eq!(p.sources[1].config, json!({ "path": "/a" }));
    assert_eq!(
        p.sources[2].allow,
        Allow {
            read: vec!["/etc/ssl/certs".into()],
            reveal: vec!["token".into()],
            connect: vec!["db.lan:5432".into()],
            http: vec!["https://nas.lan".into()],
            exec: vec!["pg_dump".into()],
        }
    );
    assert_eq!(p.sources[2].config, json!({}));

    let sinks: Vec<(&str, Option<&str>, Vec<String>)> =
        p.sinks.iter().map(|s| (s.instance.name.as_str(), s.target.as_deref(), s.inputs.clone())).collect();
    assert_eq!(
        sinks,
        [
            ("zz", Some("s3+https://bucket/prefix?endpoint=minio.lan"), vec!["mid".into(), "zeta".into()]),
            ("aa", None, vec!["zeta".into(), "alpha".into(), "mid".into()]),
        ]
    );
}

#[test]
fn the_brief_example() {
    let p = parse_valid("brief-example.toml");
    assert_eq!((p.name.as_str(), p.concurrency), ("homelab", 2));
    let offsite = &p.sinks[0];
    assert_eq!(offsite.target.as_deref(), Some("file:///backups/homelab"));
    assert_eq!(offsite.inputs, ["docs", "mail"]);
    assert_eq!(
        offsite.instance.config,
        json!({
            "encryption": "symmetric",
            "passphrase": { "secret": "passphrase" },
            "full_if_older_than": "30D",
            "volsize_mb": 200,
            "keep_full": 3,
        })
    );
    assert_eq!(offsite.instance.secrets, [secret("passphrase", SecretSource::Env("PASSPHRASE".into()))]);
    let mail = &p.sources[1];
    assert_eq!(mail.plugin, PluginRef::Builtin("imap".into()));
    assert_eq!(mail.secrets, [secret("password", SecretSource::File("/run/secrets/alice.imap".into()))]);
    assert_eq!(mail.config["folders"], json!(["*"]));
    assert_eq!(
        mail.key_lines.keys().collect::<Vec<_>>(),
        ["folders", "password", "plugin", "server", "tls", "username"]
    );
}
