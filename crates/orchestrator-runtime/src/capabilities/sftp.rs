//! Reading a tree over SFTP for plugins (WIT `sftp`, since 0.1.4), over
//! `orchestrator-sftp` (libssh2, blocking: every call runs in
//! `spawn_blocking`). The endpoint must be granted with a `connect` want;
//! the key's passphrase is resolved from the plugin's secrets by config key;
//! the host key is checked against `known_hosts`, with no way around it.

use crate::bindings::PluginError;
use crate::bindings::source::orchestrator::plugin::sftp as wit;
use crate::bindings::source::orchestrator::plugin::types::{EntryKind, Metadata};
use crate::state::PluginState;
use orchestrator_sftp::{Auth, ErrorKind, FileKind, Meta, Secret, Sftp, SftpConfig, SftpError, SftpReader};
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use wasmtime::component::Resource;

/// Sessions and files one plugin may hold open at once.
const MAX_OPEN: usize = 64;

/// The endpoints (`host:port`) one plugin instance was granted.
#[derive(Debug, Default, Clone)]
pub struct SftpCtx {
    granted: Vec<String>,
    /// The string values of the plugin's configuration: the only key files
    /// and known_hosts files it may name.
    files: Vec<String>,
    open: usize,
}

impl SftpCtx {
    /// Grants for `endpoints` (the plugin's `connect` wants the pipeline
    /// granted), with key and known_hosts files among `config_values`.
    pub fn new(endpoints: &[String], config_values: Vec<String>) -> SftpCtx {
        SftpCtx { granted: endpoints.to_vec(), files: config_values, open: 0 }
    }
}

/// A session handed to a plugin.
pub struct Session {
    sftp: Sftp,
}

/// A remote file handed to a plugin; `None` while a read runs on a blocking thread.
pub struct RemoteFile {
    reader: Option<SftpReader>,
}

/// The plugin error for an SFTP failure (messages start with `user@host:port`).
pub fn plugin_error(e: SftpError) -> PluginError {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::Auth | ErrorKind::HostKey | ErrorKind::PermissionDenied => PluginError::PermissionDenied(text),
        ErrorKind::Unreachable => PluginError::Transient(text),
        ErrorKind::NotFound => PluginError::NotFound(text),
        _ => PluginError::Io(text),
    }
}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// SFTP metadata as the WIT's; `target` is a symlink's target.
fn metadata(meta: &Meta, target: Option<Vec<u8>>) -> Metadata {
    let kind = match meta.kind {
        FileKind::File => EntryKind::File,
        FileKind::Dir => EntryKind::Directory,
        FileKind::Symlink => EntryKind::Symlink,
        FileKind::Fifo => EntryKind::Fifo,
        // SFTP v3 does not tell devices from sockets; sources skip sockets.
        FileKind::Other => EntryKind::Socket,
    };
    Metadata {
        kind,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        mtime: meta.mtime,
        mtime_nsec: 0,
        size: if kind == EntryKind::File { meta.size } else { 0 },
        symlink_target: if kind == EntryKind::Symlink { Some(target.unwrap_or_default()) } else { None },
        device: None,
    }
}

fn link_target(sftp: &Sftp, path: &Path) -> Result<Vec<u8>, PluginError> {
    Ok(sftp.read_link(path).map_err(plugin_error)?.into_os_string().into_vec())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(PluginError::Other(format!("an SFTP call failed on its thread: {e}"))))
}

impl PluginState {
    fn sftp_config(&self, options: wit::ConnectOptions) -> Result<SftpConfig, PluginError> {
        let endpoint = if options.host.contains(':') {
            format!("[{}]:{}", options.host, options.port)
        } else {
            format!("{}:{}", options.host, options.port)
        };
        if !self.sftp.granted.contains(&endpoint) {
            return Err(PluginError::PermissionDenied(format!(
                "SFTP to {endpoint} was not granted: the plugin must want it (`connect` want) and \"{endpoint}\" \
                 must be in its configuration or in allow.connect"
            )));
        }
        for (key, path) in [("key file", &options.key_file), ("known_hosts", &options.known_hosts)] {
            if !path.starts_with('/') {
                return Err(PluginError::Config(format!("the SFTP {key} must be an absolute path, got {path:?}")));
            }
            // Else a plugin granted one connection could log in with any
            // key the host can read.
            if !self.sftp.files.contains(path) {
                return Err(PluginError::PermissionDenied(format!(
                    "the plugin named the SFTP {key} {path} for {endpoint}, which is not a value of its configuration"
                )));
            }
        }
        let passphrase = match options.key_passphrase_secret {
            None => None,
            Some(name) => match self.secrets.get(&name) {
                Some(value) => Some(Secret::new(value.expose())),
                None => return Err(PluginError::Config(format!("no secret `{name}` in this plugin's configuration"))),
            },
        };
        let auth = Auth::KeyFile { path: options.key_file.into(), passphrase };
        let mut config = SftpConfig::new(options.host, options.user, auth, options.known_hosts);
        config.port = options.port;
        Ok(config)
    }
}

impl wit::Host for PluginState {
    async fn connect(
        &mut self,
        options: wit::ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<Session>, PluginError>> {
        if self.sftp.open >= MAX_OPEN {
            return Ok(Err(PluginError::Other(format!("more than {MAX_OPEN} SFTP sessions and files open at once"))));
        }
        let config = match self.sftp_config(options) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        match blocking(move || Sftp::connect(&config).map_err(plugin_error)).await {
            Ok(sftp) => {
                self.sftp.open += 1;
                Ok(Ok(self.table.push(Session { sftp })?))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit::HostSession for PluginState {
    async fn lstat(
        &mut self,
        this: Resource<Session>,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Metadata, PluginError>> {
        let sftp = self.table.get(&this)?.sftp.clone();
        Ok(blocking(move || {
            let path = path_of(&path);
            let meta = sftp.lstat(&path).map_err(plugin_error)?;
            let target = if meta.kind == FileKind::Symlink { Some(link_target(&sftp, &path)?) } else { None };
            Ok(metadata(&meta, target))
        })
        .await)
    }

    async fn read_dir(
        &mut self,
        this: Resource<Session>,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<wit::DirEntry>, PluginError>> {
        let sftp = self.table.get(&this)?.sftp.clone();
        Ok(blocking(move || {
            let dir = path_of(&path);
            let listed = sftp.read_dir(&dir).map_err(plugin_error)?;
            let mut out = Vec::with_capacity(listed.len());
            for (name, meta) in listed {
                let target = if meta.kind == FileKind::Symlink {
                    Some(link_target(&sftp, &dir.join(OsStr::from_bytes(&name)))?)
                } else {
                    None
                };
                out.push(wit::DirEntry { meta: metadata(&meta, target), name });
            }
            Ok(out)
        })
        .await)
    }

    async fn read_link(
        &mut self,
        this: Resource<Session>,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let sftp = self.table.get(&this)?.sftp.clone();
        Ok(blocking(move || link_target(&sftp, &path_of(&path))).await)
    }

    async fn open(
        &mut self,
        this: Resource<Session>,
        path: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<RemoteFile>, PluginError>> {
        if self.sftp.open >= MAX_OPEN {
            return Ok(Err(PluginError::Other(format!("more than {MAX_OPEN} SFTP sessions and files open at once"))));
        }
        let sftp = self.table.get(&this)?.sftp.clone();
        match blocking(move || sftp.open(path_of(&path)).map_err(plugin_error)).await {
            Ok(reader) => {
                self.sftp.open += 1;
                Ok(Ok(self.table.push(RemoteFile { reader: Some(reader) })?))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn drop(&mut self, this: Resource<Session>) -> wasmtime::Result<()> {
        let session = self.table.delete(this)?;
        // Disconnecting blocks on the socket.
        let _ = tokio::task::spawn_blocking(move || drop(session)).await;
        self.sftp.open = self.sftp.open.saturating_sub(1);
        Ok(())
    }
}

impl wit::HostRemoteFile for PluginState {
    async fn read(&mut self, this: Resource<RemoteFile>, max: u32) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let file = self.table.get_mut(&this)?;
        let Some(mut reader) = file.reader.take() else {
            return Ok(Err(PluginError::Other("the file is being read already".into())));
        };
        let (reader, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = orchestrator_storage::fill(&mut reader, max).map_err(|e| PluginError::Io(e.to_string()));
            (reader, chunk)
        })
        .await?;
        self.table.get_mut(&this)?.reader = Some(reader);
        Ok(chunk)
    }

    async fn drop(&mut self, this: Resource<RemoteFile>) -> wasmtime::Result<()> {
        let file = self.table.delete(this)?;
        let _ = tokio::task::spawn_blocking(move || drop(file)).await;
        self.sftp.open = self.sftp.open.saturating_sub(1);
        Ok(())
    }
}
