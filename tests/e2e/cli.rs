//! The command line: plugin commands, validate, exit codes, config errors.

use crate::harness::{Env, plugin};

const SIMPLE: &str = r#"
[pipeline]
name = "simple"

[sources.docs]
plugin = "directory"
path = "{dir}/data"
exclude = ["*.tmp"]

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
"#;

#[test]
fn plugin_list_and_inspect_describe_components() {
    let env = Env::new();
    let list = env.run_binary(&["plugin", "list"], &[]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains("directory") && list.stdout.contains("source"), "{}", list.all());

    let file = plugin("fixture_sink");
    let inspect = env.run_binary(&["plugin", "inspect", file.to_str().unwrap(), "--json"], &[]);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(json["world"], "sink");
    assert_eq!(json["name"], "fixture-sink");
    assert!(json["imports"].as_array().unwrap().iter().any(|i| i == "orchestrator:plugin/storage@0.1.4"));

    std::fs::write(env.path("junk.wasm"), b"not wasm").unwrap();
    let junk = env.run_binary(&["plugin", "inspect", env.path("junk.wasm").to_str().unwrap()], &[]);
    assert_eq!(junk.code, 2, "{}", junk.all());
    assert!(junk.stderr.contains("not a usable WebAssembly component"), "{}", junk.all());
}

#[test]
fn validate_prints_grants_and_touches_nothing() {
    let env = Env::new();
    std::fs::create_dir(env.path("data")).unwrap();
    let p = env.pipeline("p.toml", SIMPLE);
    let out = env.run_binary(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(&format!("grant: read {}/data", env.dir.path().display())), "{}", out.all());
    assert!(!env.path("backup").exists(), "validate touched the target");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let env = Env::new();
    let p = env.pipeline("bad.toml", "[pipeline]\nname = \"x\"\nconcurrency = \"two\"\n[sources.docs]\nplugin = \"directory\"\npath = \"/x\"\n[sinks.s]\nplugin = \"directory\"\ninputs = [\"nope\"]\n");
    let out = env.run_binary(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("bad.toml:3:15: pipeline.concurrency: expected an integer >= 1"), "{}", out.all());
    assert!(out.stderr.contains("bad.toml:9:11: sinks.s.inputs[0]: there is no source `nope`"), "{}", out.all());

    // A key only the plugin knows is wrong: the plugin says so, the host
    // points at the line.
    let p = env.pipeline("typo.toml", &SIMPLE.replace("exclude = [\"*.tmp\"]", "exclud = [\"*.tmp\"]"));
    std::fs::create_dir_all(env.path("data")).unwrap();
    let out = env.run_binary(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("typo.toml:8: sources.docs.exclud: unknown field `exclud`"), "{}", out.all());

    // A missing file.
    let out = env.run_binary(&["run", env.path("missing.toml").to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("cannot read the pipeline file"), "{}", out.all());
}

#[test]
fn a_wrong_pin_refuses_the_plugin() {
    let env = Env::new();
    std::fs::create_dir(env.path("data")).unwrap();
    let p = env.pipeline(
        "p.toml",
        &SIMPLE.replace("{fixture_sink}\" }", &format!("{{fixture_sink}}\", sha256 = \"{}\" }}", "0".repeat(64))),
    );
    let out = env.run_binary(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("but the pipeline pins 0000"), "{}", out.all());
    assert!(!env.path("backup").exists());
}

#[test]
fn restore_exit_codes_and_safety() {
    let env = Env::new();
    std::fs::create_dir(env.path("data")).unwrap();
    std::fs::write(env.path("data/a.txt"), "a").unwrap();
    let p = env.pipeline("p.toml", SIMPLE);
    let p = p.to_str().unwrap();
    // Nothing backed up yet: exit 3.
    let out = env.run_binary(&["restore", p, "--source", "docs", "--to", env.path("r0").to_str().unwrap()], &[]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(env.run_binary(&["run", p], &[]).code, 0);
    // A non-empty target is refused unless --force.
    std::fs::create_dir(env.path("busy")).unwrap();
    std::fs::write(env.path("busy/keep"), "mine").unwrap();
    let out = env.run_binary(&["restore", p, "--source", "docs", "--to", env.path("busy").to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(std::fs::read_to_string(env.path("busy/keep")).unwrap(), "mine");
    // Unknown source: usage error.
    let out = env.run_binary(&["restore", p, "--source", "nope", "--to", env.path("r1").to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    // A time before the first backup: nothing to restore.
    let out = env.run_binary(
        &["restore", p, "--source", "docs", "--time", "1000", "--to", env.path("r2").to_str().unwrap()],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.all());
}

#[test]
fn a_missing_source_path_says_so() {
    let env = Env::new();
    let p = env.pipeline("p.toml", SIMPLE);
    let out = env.run_binary(&["run", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let error = report["jobs"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no such file or directory") && error.contains("/data"), "{error}");
    assert!(!error.contains("outside"), "{error}");
}

/// Compiled plugins are cached as machine code, which is run as it is read:
/// a cache file damaged on disk (a power cut, a bad sector) is detected by
/// its checksum and compiled again, never loaded.
#[test]
fn a_damaged_compiled_plugin_is_compiled_again() {
    let env = Env::new();
    let xdg = env.path("xdg");
    let xdg_env = [("XDG_CACHE_HOME", xdg.to_str().unwrap())];
    let compiled = xdg.join("orchestrator/compiled");
    // Start from the suite's shared cache when it is there: compiling every
    // plugin again costs the suite seconds of CPU.
    std::fs::create_dir_all(&compiled).unwrap();
    let shared = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache/orchestrator/compiled");
    for entry in std::fs::read_dir(&shared).into_iter().flatten() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), compiled.join(entry.file_name())).unwrap();
    }
    let first = env.run_binary(&["plugin", "list"], &xdg_env);
    assert_eq!(first.code, 0, "{}", first.all());
    // Damage one compiled plugin: a third of its bytes flipped.
    let mut cached: Vec<_> = std::fs::read_dir(&compiled).unwrap().map(|e| e.unwrap().path()).collect();
    cached.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    cached.sort();
    let victim = cached.first().expect("plugin list caches what it compiled");
    let mut bytes = std::fs::read(victim).unwrap();
    let (start, end) = (bytes.len() / 3, bytes.len() * 2 / 3);
    for b in &mut bytes[start..end] {
        *b ^= 0x5a;
    }
    std::fs::write(victim, bytes).unwrap();
    let again = env.run_binary(&["plugin", "list", "--log", "warn"], &xdg_env);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.stdout, first.stdout);
    assert!(again.stderr.contains("recompiling") && again.stderr.contains("checksum"), "{}", again.all());
    let third = env.run_binary(&["plugin", "list", "--log", "warn"], &xdg_env);
    assert!(!third.stderr.contains("recompiling"), "the cache was not repaired: {}", third.all());
}

/// The 3-2-1 example is a valid pipeline (with its secret files present):
/// `validate` accepts it and contacts none of its servers.
#[test]
fn the_3_2_1_example_validates() {
    let env = Env::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/3-2-1/pipeline.toml");
    let secrets = env.path("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for name in ["truenas-api-key", "archive-passphrase", "b2-key-id", "b2-application-key"] {
        std::fs::write(secrets.join(name), format!("{name} value")).unwrap();
    }
    let text = std::fs::read_to_string(example).unwrap().replace("/run/secrets/", "{dir}/secrets/");
    let p = env.pipeline("pipeline.toml", &text);
    let run = env.run(&["validate", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
}
