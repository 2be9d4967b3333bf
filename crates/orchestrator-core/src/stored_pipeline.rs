//! `store_pipeline = true`: after a run, the pipeline file goes beside the
//! archives in each sink's target (`.orchestrator-pipeline/<name>.toml`,
//! `.gpg` when the sink encrypts), sealed as the sink seals its archives
//! and with values written inline under a secret's key left out; so a
//! restore can start from the target and the archive's key alone
//! (`orchestrator fetch-pipeline`). Standard OpenPGP: `gpg -d` opens it too.

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::Plan;
use orchestrator_config::{SecretValue, Secrets, Sink};
use orchestrator_storage::{Encoding, KeyRing, OpenpgpKeys, Place, StorageError, StorageOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// The folder at the target's root (a source's name cannot start with `.`).
const DIR: &str = ".orchestrator-pipeline";

/// How the sink seals: duplicity-sink's `encryption` and its key names.
fn encoding_of(sink: &Sink) -> (Encoding, &'static str) {
    match sink.instance.config.get("encryption").and_then(|v| v.as_str()) {
        Some("symmetric") => (
            Encoding::Openpgp(OpenpgpKeys {
                passphrase: Some("passphrase".into()),
                recipients: None,
                secret_key: None,
            }),
            ".gpg",
        ),
        Some("public-key") => (
            Encoding::Openpgp(OpenpgpKeys {
                passphrase: None,
                recipients: Some("recipients".into()),
                secret_key: None,
            }),
            ".gpg",
        ),
        _ => (Encoding::None, ""),
    }
}

/// Store `text` (the pipeline file) in `sink`'s target.
pub fn store(plan: &Plan, sink: &Sink, text: &str) -> Result<String> {
    let Some(storage) = plan.storage_of(sink) else { return Ok(String::new()) };
    let (encoding, suffix) = encoding_of(sink);
    let base = plan.pipeline.file.parent().map(PathBuf::from).unwrap_or_default();
    let keys = KeyRing::new(plan.resolve_secrets(&sink.instance)?, sink.instance.config.clone(), base);
    let name = format!("{}.toml{suffix}", plan.pipeline.name);
    let text = orchestrator_config::without_inline_values(
        text,
        crate::recovery::SECRET_KEYS,
        "(written inline in the pipeline file: not stored)",
    );
    let place = Place::new(storage.clone(), DIR).with_keys(Arc::new(keys));
    let failed = |e: StorageError| {
        Error::Failed(format!("storing the pipeline file as {}: {e}", storage.locate(&format!("{DIR}/{name}"))))
    };
    let mut writer = place.put(&name, &encoding).map_err(failed)?;
    writer.write(text.into_bytes()).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(storage.locate(&format!("{DIR}/{name}")))
}

/// What `fetch` needs besides the target.
pub struct Fetch {
    /// The target URL (`file:///…`, `sftp://…`, `s3://…`, `rclone:…`).
    pub target: String,
    /// The pipeline's name.
    pub name: String,
    /// The target's settings, as the `[sinks.NAME.storage]` table has them.
    pub storage: serde_json::Map<String, serde_json::Value>,
    /// An armored secret key file, for public-key archives.
    pub secret_key: Option<PathBuf>,
}

/// Read a stored pipeline file back: plain, or opened with the passphrase
/// in `PASSPHRASE` (as duplicity reads it) or `secret_key`.
pub fn fetch(request: &Fetch, env: &Environment) -> Result<String> {
    let options = StorageOptions {
        values: request.storage.clone(),
        base_dir: std::env::current_dir().unwrap_or_default(),
        home: env.var("HOME").map(PathBuf::from),
        environment: orchestrator_storage::ENVIRONMENT
            .iter()
            .filter_map(|name| Some((name.to_string(), SecretValue::new(env.var(name)?.to_string()))))
            .collect(),
        ..StorageOptions::default()
    };
    let storage = orchestrator_storage::open_with(&request.target, &options)
        .map_err(|e| Error::Usage(format!("{}: {e}", request.target)))?;
    let mut secrets = Secrets::default();
    if let Some(p) = env.var("PASSPHRASE") {
        secrets.insert("passphrase".into(), SecretValue::new(p.to_string()));
    }
    if let Some(path) = &request.secret_key {
        let armored =
            std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
        secrets.insert("secret_key".into(), SecretValue::new(armored));
    }
    let keys = KeyRing::new(secrets.clone(), serde_json::Value::Null, PathBuf::new());
    let place = Place::new(storage.clone(), DIR).with_keys(Arc::new(keys));
    let sealed = Encoding::Openpgp(OpenpgpKeys {
        passphrase: secrets.get("passphrase").map(|_| "passphrase".to_string()),
        recipients: None,
        secret_key: request.secret_key.as_ref().map(|_| "secret_key".to_string()),
    });
    let mut reader = None;
    for (name, encoding) in
        [(format!("{}.toml.gpg", request.name), &sealed), (format!("{}.toml", request.name), &Encoding::None)]
    {
        match place.get(&name, encoding) {
            Ok(r) => {
                reader = Some(r);
                break;
            }
            Err(StorageError::NotFound(_)) => continue,
            Err(e) => return Err(Error::Failed(format!("{}: {e}", storage.locate(&format!("{DIR}/{name}"))))),
        }
    }
    let Some(mut reader) = reader else {
        return Err(Error::NothingToRestore(format!(
            "no stored pipeline `{}` at {} (it is stored by runs of a pipeline with store_pipeline = true)",
            request.name,
            storage.locate(DIR)
        )));
    };
    let mut bytes = Vec::new();
    loop {
        let chunk = reader.read(1 << 20).map_err(|e| Error::Failed(e.to_string()))?;
        if chunk.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| Error::Failed("the stored pipeline file is not UTF-8 text".into()))
}
