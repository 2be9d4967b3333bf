//! What a valid pipeline file becomes: the JSON a plugin receives, the secret
//! references the host resolves, resolved paths, defaults and key lines.

use orchestrator_config::{PluginKind, PluginRef, SecretRef, SecretSource, parse};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE: &str = r#"
[pipeline]
name = "homelab"
cache_dir = "cache"

[sources.api]
plugin = { path = "plugins/api.wasm", sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789" }
url = "https://nas.lan"
auth = { token = { file = "secrets/token" }, user = "admin" }
keys = [{ env = "KEY_ONE" }, "plain"]
since = 2026-01-02T03:04:05Z
ratio = 0.5
retries = 3
allow = { reveal = ["auth.token"] }
limits = { memory_mb = 128, call_timeout = "90s", timeout = "1h30m" }

[sources.docs]
plugin = "directory"
path = "/data/docs"

[sinks.offsite]
plugin = "duplicity-sink"
target = "file:///backups"
inputs = ["docs"]
passphrase = { env = "PASSPHRASE" }
"#;

#[test]
fn plugin_config_secrets_and_host_keys() {
    let p = parse(FILE, Path::new("/etc/orch/pipeline.toml")).unwrap();
    assert_eq!(p.name, "homelab");
    assert_eq!(p.cache_dir, Some(PathBuf::from("/etc/orch/cache")));
    assert_eq!(p.concurrency, 2);

    let api = &p.sources[0];
    assert_eq!((api.name.as_str(), api.kind), ("api", PluginKind::Source));
    assert_eq!(
        api.plugin,
        PluginRef::File {
            path: PathBuf::from("/etc/orch/plugins/api.wasm"),
            sha256: Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into()),
        }
    );
    assert_eq!(
        api.config,
        json!({
            "url": "https://nas.lan",
            "auth": { "token": { "secret": "auth.token" }, "user": "admin" },
            "keys": [{ "secret": "keys.0" }, "plain"],
            "since": "2026-01-02T03:04:05Z",
            "ratio": 0.5,
            "retries": 3,
        })
    );
    assert_eq!(
        api.secrets,
        vec![
            SecretRef {
                key: "auth.token".into(),
                source: SecretSource::File(PathBuf::from("/etc/orch/secrets/token"))
            },
            SecretRef { key: "keys.0".into(), source: SecretSource::Env("KEY_ONE".into()) },
        ]
    );
    assert_eq!(api.allow.reveal, vec!["auth.token".to_string()]);
    assert_eq!(api.limits.memory_mb, 128);
    assert_eq!(api.limits.call_timeout, Duration::from_secs(90));
    assert_eq!(api.limits.timeout, Some(Duration::from_secs(5400)));
    assert_eq!(api.header_line, 6);
    assert_eq!(api.line_of("auth.token"), 9);
    assert_eq!(api.line_of("keys[0]"), 10);
    assert_eq!(api.line_of("nonexistent"), 6);

    let docs = &p.sources[1];
    assert_eq!(docs.plugin, PluginRef::Builtin("directory".into()));
    assert_eq!(docs.config, json!({ "path": "/data/docs" }));
    assert_eq!(docs.limits, orchestrator_config::Limits::default());

    let sink = &p.sinks[0];
    assert_eq!(sink.target.as_deref(), Some("file:///backups"));
    assert_eq!(sink.inputs, vec!["docs".to_string()]);
    // Host keys never reach the plugin; secrets arrive as references only.
    assert_eq!(sink.instance.config, json!({ "passphrase": { "secret": "passphrase" } }));
}

#[test]
fn inputs_default_to_every_source_in_file_order() {
    let text = FILE.replace("inputs = [\"docs\"]\n", "");
    let p = parse(&text, Path::new("p.toml")).unwrap();
    assert_eq!(p.sinks[0].inputs, vec!["api".to_string(), "docs".to_string()]);
}

#[test]
fn an_unreadable_file_is_one_error_naming_it() {
    let e = orchestrator_config::load(Path::new("/nonexistent/pipeline.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(e.to_string().starts_with("/nonexistent/pipeline.toml: cannot read the pipeline file:"), "{e}");
}

#[test]
fn errors_carry_file_line_column_and_key() {
    let text = FILE.replace("memory_mb = 128", "memory_mb = 5");
    let e = parse(&text, Path::new("pipeline.toml")).unwrap_err();
    assert_eq!(
        e.0,
        vec![orchestrator_config::ConfigError {
            file: PathBuf::from("pipeline.toml"),
            line: 15,
            column: 24,
            key: Some("sources.api.limits.memory_mb".into()),
            message: "expected an integer between 16 and 65536, found 5".into(),
        }]
    );
    assert_eq!(
        e.to_string(),
        "pipeline.toml:15:24: sources.api.limits.memory_mb: expected an integer between 16 and 65536, found 5\n"
    );
}

#[test]
fn a_syntax_error_is_one_line_without_key() {
    let e = parse("[pipeline]\nname = \"x\nconcurrency = 1\n", Path::new("p.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!((e.0[0].line, e.0[0].key.as_deref()), (2, None));
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
}

#[test]
fn load_reads_the_file_and_resolves_against_its_directory() {
    let dir = std::env::temp_dir().join(format!("orchestrator-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, FILE).unwrap();
    let loaded = orchestrator_config::load(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    let p = loaded.unwrap();
    assert_eq!(p.file, file);
    assert_eq!(p.cache_dir, Some(dir.join("cache")));
    assert_eq!(p.sources[0].secrets[0].source, SecretSource::File(dir.join("secrets/token")));
}

#[test]
fn a_bare_file_name_leaves_relative_paths_relative_to_the_working_directory() {
    let p = parse(FILE, Path::new("pipeline.toml")).unwrap();
    assert_eq!(p.cache_dir, Some(PathBuf::from("cache")));
    assert!(matches!(&p.sources[0].plugin, PluginRef::File { path, .. } if path == Path::new("plugins/api.wasm")));
}

#[test]
fn nothing_reaches_the_result_when_anything_is_wrong() {
    // One bad table among good ones still fails the whole file.
    let text =
        FILE.replace("[sources.docs]\nplugin = \"directory\"", "[sources.docs]\nplugin = \"directory\"\nallow = 1");
    let e = parse(&text, Path::new("p.toml")).unwrap_err();
    assert_eq!(e.to_string(), "p.toml:19:9: sources.docs.allow: expected a table, found integer\n");
}
