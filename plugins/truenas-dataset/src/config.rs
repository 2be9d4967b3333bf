//! The source's table in the pipeline file, its checks and its wants.

use plugin_sdk::{PluginError, Secret, Want};
use serde::Deserialize;

/// How the snapshot's files are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The dataset is mounted here (`local_path`, else the NAS mountpoint):
    /// read `<path>/.zfs/snapshot/<name>` through the filesystem capability.
    #[default]
    Local,
    /// Read the same path on the NAS over SFTP.
    Sftp,
}

/// The source's table in the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The NAS's web address (`https://nas.lan`); plain `http://` only to a
    /// loopback address.
    pub api: String,
    /// The API key, a secret reference; the host sends it, the plugin never sees it.
    pub api_key: Secret,
    /// The user the API key belongs to. With it, JSON-RPC logins (25.04 and
    /// later) use `auth.login_ex` with `API_KEY_PLAIN`, the mechanism newer
    /// releases keep; without it, `auth.login_with_api_key`.
    pub api_user: Option<String>,
    /// The dataset, `pool/name` (`tank/media`), without `/mnt/`.
    pub dataset: String,
    /// Snapshot the child datasets too (atomically, with the same name).
    #[serde(default)]
    pub recursive: bool,
    /// `local` (default) or `sftp`.
    #[serde(default)]
    pub access: Access,
    /// Keep this many of our newest snapshots on the NAS (0: release each
    /// run's snapshot when the run is over).
    #[serde(default)]
    pub keep_snapshots: u32,
    /// Where the dataset is mounted here, when that differs from its
    /// mountpoint on the NAS (a bind mount in a container).
    pub local_path: Option<String>,
    /// A PEM file of CA certificates for a NAS with a private CA.
    pub ca_file: Option<String>,
    /// The SHA-256 fingerprint of the NAS's (self-signed) certificate.
    pub tls_fingerprint: Option<String>,
    /// `access = "sftp"`: the login name on the NAS.
    pub ssh_user: Option<String>,
    /// `access = "sftp"`: the private key file (absolute path).
    pub ssh_key: Option<String>,
    /// `access = "sftp"`: a secret reference to the key's passphrase, for an encrypted key.
    pub ssh_key_passphrase: Option<Secret>,
    /// `access = "sftp"`: the OpenSSH known_hosts file holding the NAS's key.
    pub known_hosts: Option<String>,
    /// `access = "sftp"`: `host:port` of the NAS's SSH server; default the
    /// API's host, port 22.
    pub ssh_address: Option<String>,
}

fn absolute(key: &str, value: &Option<String>) -> Result<(), PluginError> {
    match value {
        Some(p) if !p.starts_with('/') => {
            Err(PluginError::Config(format!("{key}: must be an absolute path, got {p:?}")))
        }
        Some(p) if p.split('/').any(|c| c == "..") => {
            Err(PluginError::Config(format!("{key}: must not contain \"..\", got {p:?}")))
        }
        _ => Ok(()),
    }
}

/// ZFS's dataset name characters.
fn dataset_ok(dataset: &str) -> bool {
    !dataset.is_empty()
        && dataset.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | ' '))
        })
}

impl Config {
    /// Check what serde cannot. No I/O.
    pub fn check(&self) -> Result<(), PluginError> {
        let api = self.api.trim();
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(PluginError::Config(format!(
                "api: must be the NAS's web address, https://nas.example (plain http:// only to a loopback address), \
                 got {:?}",
                self.api
            )));
        }
        if !dataset_ok(&self.dataset) {
            return Err(PluginError::Config(format!(
                "dataset: {:?} is not a dataset name: write it as pool/dataset (tank/media), as the Datasets page \
                 shows it, without /mnt/ and without @",
                self.dataset
            )));
        }
        if self.ca_file.is_some() && self.tls_fingerprint.is_some() {
            return Err(PluginError::Config(
                "ca_file and tls_fingerprint: give one of them (the pin alone decides when both are set)".into(),
            ));
        }
        absolute("local_path", &self.local_path)?;
        absolute("ca_file", &self.ca_file)?;
        absolute("ssh_key", &self.ssh_key)?;
        absolute("known_hosts", &self.known_hosts)?;
        match self.access {
            Access::Local => {
                for (key, set) in [
                    ("ssh_user", self.ssh_user.is_some()),
                    ("ssh_key", self.ssh_key.is_some()),
                    ("known_hosts", self.known_hosts.is_some()),
                    ("ssh_address", self.ssh_address.is_some()),
                    ("ssh_key_passphrase", self.ssh_key_passphrase.is_some()),
                ] {
                    if set {
                        return Err(PluginError::Config(format!(
                            "{key}: only used with access = \"sftp\" (access is \"local\")"
                        )));
                    }
                }
            }
            Access::Sftp => {
                for (key, set) in [
                    ("ssh_user", self.ssh_user.is_some()),
                    ("ssh_key", self.ssh_key.is_some()),
                    ("known_hosts", self.known_hosts.is_some()),
                ] {
                    if !set {
                        return Err(PluginError::Config(format!("{key}: required with access = \"sftp\"")));
                    }
                }
                if self.local_path.is_some() {
                    return Err(PluginError::Config(
                        "local_path: only used with access = \"local\" (over SFTP the NAS's mountpoint is read)".into(),
                    ));
                }
                self.ssh_endpoint()?;
            }
        }
        Ok(())
    }

    /// `(host, port)` of the SSH server.
    pub fn ssh_endpoint(&self) -> Result<(String, u16), PluginError> {
        let text = match &self.ssh_address {
            Some(a) => a.clone(),
            None => format!("{}:22", api_host(&self.api)),
        };
        let bad = || PluginError::Config(format!("ssh_address: write host:port (nas.lan:22), got {text:?}"));
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.to_owned(), port))
    }

    /// `host:port` as the `connect` want names it.
    pub fn ssh_want(&self) -> Result<String, PluginError> {
        let (host, port) = self.ssh_endpoint()?;
        Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
    }

    /// What the host must grant: requests under `api`; for local access the
    /// tree under `local_path` (or, without it, `/mnt/<dataset>`, which must
    /// be granted with `allow.read`); for SFTP the SSH endpoint.
    pub fn wants(&self) -> Vec<Want> {
        let mut wants = vec![Want::Http(self.api.trim().to_owned())];
        match self.access {
            Access::Local => {
                wants.push(Want::ReadPath(self.local_path.clone().unwrap_or_else(|| format!("/mnt/{}", self.dataset))))
            }
            Access::Sftp => {
                if let Ok(endpoint) = self.ssh_want() {
                    wants.push(Want::Connect(endpoint));
                }
            }
        }
        wants
    }
}

/// The host part of `api` (`https://nas.lan:8443/x` → `nas.lan`).
fn api_host(api: &str) -> String {
    let rest = api.trim().split_once("://").map_or(api, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(inner) = authority.strip_prefix('[') {
        return inner.split(']').next().unwrap_or_default().to_owned();
    }
    authority.split(':').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<Config, PluginError> {
        let json = format!(
            r#"{{"api": "https://nas.lan", "api_key": {{"secret": "api_key"}}, "dataset": "tank/data"{extra}}}"#
        );
        let config: Config = plugin_sdk::parse_config(&json)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn defaults_and_wants() {
        let c = config("").unwrap();
        assert_eq!((c.access, c.recursive, c.keep_snapshots), (Access::Local, false, 0));
        assert_eq!(c.wants(), [Want::Http("https://nas.lan".into()), Want::ReadPath("/mnt/tank/data".into())]);
        let c = config(r#", "local_path": "/data""#).unwrap();
        assert_eq!(c.wants()[1], Want::ReadPath("/data".into()));
        let c = config(r#", "access": "sftp", "ssh_user": "b", "ssh_key": "/k", "known_hosts": "/kh""#).unwrap();
        assert_eq!(c.wants()[1], Want::Connect("nas.lan:22".into()));
        let c = config(
            r#", "access": "sftp", "ssh_user": "b", "ssh_key": "/k", "known_hosts": "/kh", "ssh_address": "127.0.0.1:2222""#,
        )
        .unwrap();
        assert_eq!(c.ssh_endpoint().unwrap(), ("127.0.0.1".to_owned(), 2222));
    }

    #[test]
    fn mistakes_name_the_key() {
        for (extra, key) in [
            (r#", "dataset": "/mnt/tank""#, "dataset"),
            (r#", "local_path": "data""#, "local_path"),
            (r#", "access": "sftp""#, "ssh_user"),
            (r#", "ssh_user": "x""#, "ssh_user"),
            (r#", "ca_file": "/a", "tls_fingerprint": "AB""#, "ca_file"),
            (r#", "access": "nfs""#, "access"),
        ] {
            let json = format!(
                r#"{{"api": "https://nas.lan", "api_key": {{"secret": "api_key"}}, "dataset": "tank/data"{extra}}}"#
            );
            let json = json.replacen(r#""dataset": "tank/data", "dataset""#, r#""dataset""#, 1);
            let err = plugin_sdk::parse_config::<Config>(&json).and_then(|c| c.check()).unwrap_err();
            assert!(err.message().contains(key), "{extra}: {err:?}");
        }
        assert!(config("").is_ok());
        assert_eq!(api_host("https://nas.lan:8443/ui"), "nas.lan");
        assert_eq!(api_host("http://[::1]:80"), "::1");
    }
}
