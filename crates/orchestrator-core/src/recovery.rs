//! The recovery kit: what restoring from nothing needs, written while the
//! machine still exists. For each (source, sink) pair: where the backups
//! are, how they are sealed (key fingerprints), where every secret comes
//! from (its name, never its value), and the exact commands to restore with
//! orchestrator and with stock duplicity; and the pipeline file itself with
//! any value written inline under a secret-looking key left out.
//!
//! `run` warns while no kit was made since the pipeline file changed: the
//! kit records the file's SHA-256 in the cache directory.

use crate::env::Environment;
use orchestrator_config::{Pipeline, PluginRef, SecretRef, SecretSource, Sink};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where the kit's stamp lives in the cache directory.
const STAMP: &str = "recovery-kit.sha256";

/// Keys whose inline values are secrets (their references are kept).
pub(crate) const SECRET_KEYS: &[&str] = &[
    "passphrase",
    "password",
    "secret_access_key",
    "session_token",
    "token",
    "api_key",
    "key_passphrase",
    "config_password",
    "secret_key",
];

/// What restoring from nothing needs.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryKit {
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline file, as given.
    pub file: String,
    /// Its SHA-256, so a later file is told apart.
    pub file_sha256: String,
    /// When the kit was made, seconds since the epoch.
    pub made: i64,
    /// The orchestrator version that made it.
    pub version: String,
    /// One per (source, sink) pair.
    pub backups: Vec<KitBackup>,
    /// Every secret reference of the pipeline: where it is used and where
    /// its value comes from.
    pub secrets: Vec<KitSecret>,
    /// The pipeline file, inline secret values replaced by a note.
    pub pipeline_text: String,
}

/// One source's backups in one sink.
#[derive(Debug, Clone, Serialize)]
pub struct KitBackup {
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// The sink's plugin.
    pub plugin: String,
    /// Where this source's archives are: the target with the source's name.
    pub location: Option<String>,
    /// `symmetric`, `public-key` or `none` (duplicity-sink).
    pub encryption: Option<String>,
    /// Public-key recipients: fingerprint and user IDs, or why they could
    /// not be read.
    pub recipients: Vec<String>,
    /// The command on a new machine with the pipeline file and the secrets.
    pub restore_with_orchestrator: String,
    /// The commands with stock duplicity alone, when it can read the target.
    pub restore_with_duplicity: Option<String>,
}

/// A secret reference.
#[derive(Debug, Clone, Serialize)]
pub struct KitSecret {
    /// `sinks.nas.passphrase`, `notify.hc.url`.
    pub used_by: String,
    /// `environment variable BACKUP_PASSPHRASE`, `file /run/secrets/x`.
    pub comes_from: String,
}

/// Make the kit of `pipeline` (read from `file`).
pub fn kit(pipeline: &Pipeline, text: &str, now: i64) -> RecoveryKit {
    let base = pipeline.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = pipeline.file.display().to_string();
    let mut backups = Vec::new();
    for source in &pipeline.sources {
        for sink in pipeline.sinks.iter().filter(|s| s.inputs.contains(&source.name)) {
            backups.push(backup(&file, &base, &source.name, sink));
        }
    }
    let mut secrets = Vec::new();
    let mut add = |table: String, refs: &[SecretRef]| {
        for r in refs {
            secrets.push(KitSecret { used_by: format!("{table}.{}", r.key), comes_from: shown(&r.source) });
        }
    };
    for s in &pipeline.sources {
        add(format!("sources.{}", s.name), &s.secrets);
    }
    for s in &pipeline.sinks {
        add(format!("sinks.{}", s.instance.name), &s.instance.secrets);
        add(format!("sinks.{}", s.instance.name), &s.storage_secrets);
    }
    for n in &pipeline.notify {
        let refs: Vec<SecretRef> = notifier_secrets(&n.kind);
        add(format!("notify.{}", n.name), &refs);
    }
    RecoveryKit {
        pipeline: pipeline.name.clone(),
        file,
        file_sha256: sha256(text.as_bytes()),
        made: now,
        version: env!("CARGO_PKG_VERSION").to_string(),
        backups,
        secrets,
        pipeline_text: orchestrator_config::without_inline_values(
            text,
            SECRET_KEYS,
            "(written inline in the pipeline file: not copied into the kit)",
        ),
    }
}

fn notifier_secrets(kind: &orchestrator_config::NotifierKind) -> Vec<SecretRef> {
    use orchestrator_config::{NotifierKind, Setting};
    let mut out = Vec::new();
    let mut push = |key: &str, s: Option<&Setting>| {
        if let Some(Setting::Secret(source)) = s {
            out.push(SecretRef { key: key.to_string(), source: source.clone() });
        }
    };
    match kind {
        NotifierKind::Healthchecks { url } => push("url", Some(url)),
        NotifierKind::Webhook { url, token } | NotifierKind::Ntfy { url, token, .. } => {
            push("url", Some(url));
            push("token", token.as_ref());
        }
        NotifierKind::Email(e) => push("password", e.password.as_ref()),
        NotifierKind::Command { .. } => {}
    }
    out
}

fn shown(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(v) => format!("environment variable {v}"),
        SecretSource::File(p) => format!("file {}", p.display()),
    }
}

fn backup(file: &str, base: &Path, source: &str, sink: &Sink) -> KitBackup {
    let config = &sink.instance.config;
    let text = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let plugin = match &sink.instance.plugin {
        PluginRef::Builtin(name) => name.clone(),
        PluginRef::File { path, .. } => path.display().to_string(),
    };
    let location = sink.target.as_ref().map(|t| format!("{}/{source}", t.trim_end_matches('/')));
    let duplicity_sink = plugin == "duplicity-sink";
    let encryption = if duplicity_sink { text("encryption") } else { None };
    let mut recipients = Vec::new();
    if encryption.as_deref() == Some("public-key") {
        for key in config.get("recipients").and_then(|v| v.as_array()).into_iter().flatten() {
            let Some(path) = key.as_str() else { continue };
            let path = resolve(base, path);
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| orchestrator_storage::public_key_fingerprints(&b))
            {
                Ok(keys) => recipients.extend(keys.into_iter().map(|(fpr, ids)| format!("{fpr} {}", ids.join(", ")))),
                Err(e) => recipients.push(format!("{}: {e}", path.display())),
            }
        }
    }
    let restore_with_orchestrator =
        format!("orchestrator restore {file} --source {source} --sink {} --to /restore/{source}", sink.instance.name);
    let restore_with_duplicity = match (duplicity_sink, &sink.target) {
        (true, Some(target)) => duplicity_commands(target, source, sink, encryption.as_deref()),
        _ => None,
    };
    KitBackup {
        source: source.to_string(),
        sink: sink.instance.name.clone(),
        plugin,
        location,
        encryption,
        recipients,
        restore_with_orchestrator,
        restore_with_duplicity,
    }
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() { p } else { base.join(p) }
}

/// Stock duplicity's commands for the source's archives at `target`.
fn duplicity_commands(target: &str, source: &str, sink: &Sink, encryption: Option<&str>) -> Option<String> {
    let storage = |key: &str| sink.storage.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let mut lines = Vec::new();
    let mut options = Vec::new();
    match encryption {
        Some("none") => options.push("--no-encryption".to_string()),
        Some("public-key") => lines.push(
            "gpg --import SECRET-KEY.asc   # the recipients' secret key; PASSPHRASE is its passphrase".to_string(),
        ),
        _ => {}
    }
    if encryption != Some("none") {
        lines.push("export PASSPHRASE=...   # the sink's passphrase (see the secrets below)".to_string());
    }
    let url = if let Some(rest) = target.strip_prefix("file://") {
        format!("file://{}/{source}", rest.trim_end_matches('/'))
    } else if let Some(rest) = target.strip_prefix("sftp://") {
        // duplicity's sftp URLs take an absolute path after a second `/`.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut ssh = Vec::new();
        if let Some(k) = storage("key_file") {
            ssh.push(format!("-oIdentityFile={k}"));
        }
        if let Some(k) = storage("known_hosts") {
            ssh.push(format!("-oUserKnownHostsFile={k}"));
        }
        if !ssh.is_empty() {
            options.push(format!("--ssh-options=\"{} -oStrictHostKeyChecking=yes\"", ssh.join(" ")));
        }
        format!("pexpect+sftp://{authority}//{}/{source}", path.trim_matches('/'))
    } else if let Some(rest) = target.strip_prefix("s3://") {
        lines.push("export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...   # the target's keys".to_string());
        if let Some(endpoint) = storage("endpoint") {
            options.push(format!("--s3-endpoint-url {endpoint}"));
        }
        if let Some(region) = storage("region") {
            options.push(format!("--s3-region-name {region}"));
        }
        format!("s3://{}/{source}", rest.trim_end_matches('/'))
    } else if let Some(rest) = target.strip_prefix("rclone:") {
        format!("rclone://{}/{source}", rest.trim_end_matches('/'))
    } else {
        return None;
    };
    let mut command = vec!["duplicity restore".to_string()];
    command.extend(options);
    command.push(url);
    command.push(format!("/restore/{source}"));
    lines.push(command.join(" "));
    Some(lines.join("\n"))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Record that a kit was made for this file content.
pub fn stamp(pipeline: &Pipeline, env: &Environment, kit: &RecoveryKit) -> std::io::Result<()> {
    let Some(dir) = crate::plan::cache_dir(pipeline, env) else { return Ok(()) };
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    std::fs::write(dir.join(STAMP), &kit.file_sha256)
}

/// Whether the last kit was made for the file as it is now (`text`).
pub fn is_current(pipeline: &Pipeline, env: &Environment, text: &str) -> bool {
    let Some(dir) = crate::plan::cache_dir(pipeline, env) else { return true };
    std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s.trim() == sha256(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_left_out_and_references_kept() {
        let text = "[sinks.a]\npassphrase = \"hunter2\"\n  password = { env = \"X\" }\nstorage = { secret_access_key = \"k3y\", region = \"eu\" }\npath = \"/d\"\n";
        let out = orchestrator_config::without_inline_values(text, SECRET_KEYS, "gone");
        assert!(!out.contains("hunter2") && !out.contains("k3y"), "{out}");
        assert!(out.contains("password = { env = \"X\" }"), "{out}");
        assert!(out.contains("region = \"eu\"") && out.contains("path = \"/d\""), "{out}");
        assert!(out.contains("secret_access_key = \"gone\""), "{out}");
    }
}
