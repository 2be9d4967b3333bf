//! `recovery-kit`: what restoring from nothing needs. Its stock-duplicity
//! command, run as written, restores the backup; inline secrets stay out;
//! `run` warns until a kit is made for the file as it is.

use crate::duplicity::{Duplicity, Encryption, Peer};
use crate::harness::Env;
use crate::roundtrip::{assert_same_tree, odd_tree};

const NO_KIT: &str = "no recovery kit was made since";

#[test]
fn the_kits_duplicity_command_restores_and_runs_warn_until_a_kit_is_current() {
    let env = Env::new();
    let root = odd_tree(&env);
    let text = format!(
        r#"
[pipeline]
name = "kit"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{root}"

[sinks.local]
plugin = "duplicity-sink"
target = "file://{{dir}}/target"
{settings}

[notify.hook]
kind = "webhook"
url = "https://hooks.example.org/x"
token = "inline-t0ken-value"
"#,
        root = root.display(),
        settings = Encryption::Symmetric.sink_settings(),
    );
    let p = env.pipeline("p.toml", &text);
    let ps = p.to_str().unwrap();
    let envs = Encryption::Symmetric.env();
    let run = env.run(&["run", ps], envs);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains(NO_KIT), "{}", run.all());

    let kit_file = env.path("kit.md");
    let made = env.run(&["recovery-kit", ps, "--output", kit_file.to_str().unwrap()], &[]);
    assert_eq!(made.code, 0, "{}", made.all());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kit_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let kit = std::fs::read_to_string(&kit_file).unwrap();
    assert!(!kit.contains("inline-t0ken-value"), "{kit}");
    assert!(kit.contains("| `sinks.local.passphrase` | environment variable BACKUP_PASSPHRASE |"), "{kit}");
    assert!(kit.contains(&format!("orchestrator restore {ps} --source docs --sink local --to /restore/docs")), "{kit}");

    // Now current: no warning; a changed file warns again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", ps], envs);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.stderr.contains(NO_KIT), "{}", run.all());
    env.pipeline("p.toml", &text.replace("name = \"kit\"", "name = \"kit\"\nconcurrency = 1"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", ps], envs);
    assert!(run.stderr.contains(NO_KIT), "{}", run.all());

    // The duplicity command, as the kit writes it, restores the newest backup.
    let json = env.run(&["recovery-kit", ps, "--json"], &[]);
    assert_eq!(json.code, 0, "{}", json.all());
    let kit: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let commands = kit["backups"][0]["restore_with_duplicity"].as_str().unwrap().to_string();
    assert!(commands.contains("export PASSPHRASE="), "{commands}");
    let Some(dup) = Duplicity::find(Peer::Debian) else { return };
    let command = commands.lines().last().unwrap();
    let dest = env.path("restored");
    let args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(|a| if a == "/restore/docs" { dest.display().to_string() } else { a.to_string() })
        .collect();
    assert_eq!(args[0], "restore", "{command}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dup.run(&env, Encryption::Symmetric, &args);
    assert_same_tree(&root, &dest);
}

#[test]
fn a_stored_pipeline_file_comes_back_from_the_target_alone_and_restores() {
    let env = Env::new();
    let root = odd_tree(&env);
    let text = format!(
        r#"
[pipeline]
name = "stored"
cache_dir = "{{dir}}/cache"
store_pipeline = true

[sources.docs]
plugin = "directory"
path = "{root}"

[sinks.local]
plugin = "duplicity-sink"
target = "file://{{dir}}/target"
{settings}

[notify.hook]
kind = "webhook"
url = "https://hooks.example.org/x"
token = "inline-t0ken-value"
on = ["start"]
sources = ["docs"]
"#,
        root = root.display(),
        settings = Encryption::Symmetric.sink_settings(),
    );
    let p = env.pipeline("p.toml", &text);
    let envs = Encryption::Symmetric.env();
    let run = env.run(&["run", p.to_str().unwrap()], envs);
    assert_eq!(run.code, 0, "{}", run.all());
    let stored = env.path("target/.orchestrator-pipeline/stored.toml.gpg");
    let sealed = std::fs::read(&stored).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    assert!(!String::from_utf8_lossy(&sealed).contains("duplicity-sink"), "stored in clear");
    // Stock gpg opens it with the archive's passphrase.
    std::fs::create_dir_all(env.path("gnupg")).unwrap();
    std::fs::set_permissions(env.path("gnupg"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = std::process::Command::new("gpg")
        .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "interop passphrase", "-d"])
        .arg(&stored)
        .env("GNUPGHOME", env.path("gnupg"))
        .output()
        .expect("gpg (installed with duplicity)");
    let opened = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && opened.contains("store_pipeline = true"),
        "{opened}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new machine: the target and the passphrase, nothing else.
    let fresh = Env::new();
    let target = format!("file://{}", env.path("target").display());
    let fetched = fresh.path("pipeline.toml");
    let wrong = fresh.run(&["fetch-pipeline", &target, "--name", "stored"], &[("PASSPHRASE", "not it")]);
    assert_eq!(wrong.code, 1, "{}", wrong.all());
    assert!(wrong.stderr.contains("cannot decrypt"), "{}", wrong.all());
    let got = fresh.run(
        &["fetch-pipeline", &target, "--name", "stored", "--output", fetched.to_str().unwrap()],
        &[("PASSPHRASE", "interop passphrase")],
    );
    assert_eq!(got.code, 0, "{}", got.all());
    let back = std::fs::read_to_string(&fetched).unwrap();
    assert!(!back.contains("inline-t0ken-value"), "{back}");
    assert!(back.contains("passphrase = { env = \"BACKUP_PASSPHRASE\" }"), "{back}");
    // Its cache would be in the old machine's place: point it at the new one.
    let back = back.replace(&env.path("cache").display().to_string(), &fresh.path("cache").display().to_string());
    std::fs::write(&fetched, back).unwrap();
    let dest = fresh.path("restored");
    let restore =
        fresh.run(&["restore", fetched.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()], envs);
    assert_eq!(restore.code, 0, "{}", restore.all());
    assert_same_tree(&root, &dest);
    let missing = fresh.run(&["fetch-pipeline", &target, "--name", "other"], &[("PASSPHRASE", "x")]);
    assert_eq!(missing.code, 3, "{}", missing.all());
    assert!(missing.stderr.contains("no stored pipeline `other`"), "{}", missing.all());
}
