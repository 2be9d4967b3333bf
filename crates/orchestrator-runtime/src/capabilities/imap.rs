//! IMAP for source plugins (WIT `imap`, 0.1.4) over `orchestrator-imap`.
//!
//! The plugin names a server and the config key of the secret holding the
//! password; the host checks the endpoint against the plugin's `connect`
//! grants, looks the password up in the instance's secrets (as the storage
//! keys are, `storage/keys.rs`), and holds the logged-in connection. The
//! password never crosses into the plugin, and the crate keeps it out of
//! every log line and error. Plain IMAP is refused by the crate unless the
//! server is on loopback.

use crate::bindings::PluginError;
use crate::bindings::source::orchestrator::plugin::imap as wit;
use crate::capabilities::secrets::SecretsCtx;
use crate::state::PluginState;
use orchestrator_imap::{Client, ErrorKind, ImapError, Password, Security, ServerConfig};
use wasmtime::component::Resource;

/// Connections one plugin instance may hold at once.
const MAX_CONNECTIONS: usize = 4;
/// Most UIDs one `fetch-bodies` call may name.
const MAX_FETCH_UIDS: usize = 10_000;
/// Most bytes one `fetch-bodies` answer may carry into the plugin.
const MAX_FETCH_BYTES: usize = 256 << 20;

/// What one instance may reach: the `host:port` endpoints it was granted,
/// and the CA files it may name (values of its own configuration: the host
/// reads a `ca-file`, so a plugin must not point it at just any file).
#[derive(Debug, Default, Clone)]
pub struct ImapCtx {
    granted: Vec<String>,
    files: Vec<String>,
    open: usize,
}

/// A logged-in connection handed to a plugin.
pub struct Connection {
    client: Option<Client>,
    server: String,
}

/// `host:port` as grants and errors name it (`[::1]:993` for IPv6).
pub fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl ImapCtx {
    /// A context allowing the `connect` grants `granted` and CA files among `files`.
    pub fn new(granted: Vec<String>, files: Vec<String>) -> ImapCtx {
        ImapCtx { granted, files, open: 0 }
    }

    /// The crate's configuration for `server`, if it is granted and its
    /// password is a secret of the plugin's configuration.
    pub fn server_config(&self, server: &wit::Server, secrets: &SecretsCtx) -> Result<ServerConfig, PluginError> {
        let at = endpoint(&server.host, server.port);
        if !self.granted.contains(&at) {
            return Err(PluginError::PermissionDenied(format!(
                "the plugin may not connect to IMAP server {at}: it was not granted (name the server in the \
                 plugin's host and port, or add \"{at}\" to its allow.connect)"
            )));
        }
        let key = &server.password_secret;
        let password = secrets.get(key).ok_or_else(|| {
            PluginError::Config(format!(
                "{key}: the password for IMAP server {at} must be a secret, e.g. {key} = {{ env = \"VARIABLE\" }}"
            ))
        })?;
        let security = match server.security {
            wit::Security::Tls => Security::Tls,
            wit::Security::Starttls => Security::StartTls,
            wit::Security::Plain => Security::Plain,
        };
        let mut config =
            ServerConfig::new(&server.host, security, &server.user, Password::new(password.expose().to_string()));
        config.port = server.port;
        if let Some(ca) = &server.ca_file {
            if !ca.starts_with('/') {
                return Err(PluginError::Config(format!("ca_file: must be an absolute path, got {ca:?}")));
            }
            if !self.files.contains(ca) {
                return Err(PluginError::PermissionDenied(format!(
                    "the plugin named the CA file {ca} for IMAP server {at}, which is not a value of its \
                     configuration"
                )));
            }
            config.ca_file = Some(ca.into());
        }
        Ok(config)
    }
}

/// The plugin error for a failure of the IMAP client; its sentence names
/// the server.
pub fn plugin_error(err: ImapError) -> PluginError {
    let message = err.to_string();
    match err.kind() {
        ErrorKind::Auth => PluginError::PermissionDenied(message),
        ErrorKind::Unreachable => PluginError::Transient(message),
        // Refusing a server whose identity cannot be checked is a trust decision.
        ErrorKind::Tls => PluginError::PermissionDenied(message),
        ErrorKind::NotFound => PluginError::NotFound(message),
        ErrorKind::Config => PluginError::Config(message),
        ErrorKind::Other => PluginError::Other(message),
    }
}

impl Connection {
    fn client(&mut self) -> Result<&mut Client, PluginError> {
        let server = &self.server;
        self.client
            .as_mut()
            .ok_or_else(|| PluginError::Other(format!("the connection to IMAP server {server} was logged out")))
    }
}

type Answer<T> = wasmtime::Result<Result<T, PluginError>>;

impl wit::Host for PluginState {
    async fn connect(&mut self, server: wit::Server) -> Answer<Resource<Connection>> {
        let config = match self.imap.server_config(&server, &self.secrets) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        if self.imap.open >= MAX_CONNECTIONS {
            return Ok(Err(PluginError::Other(format!(
                "the plugin already holds {MAX_CONNECTIONS} IMAP connections; log out of one first"
            ))));
        }
        let client = match Client::connect(&config).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(plugin_error(e))),
        };
        self.imap.open += 1;
        let connection = Connection { client: Some(client), server: config.server() };
        Ok(Ok(self.table.push(connection)?))
    }
}

impl wit::HostConnection for PluginState {
    async fn list_folders(&mut self, this: Resource<Connection>) -> Answer<Vec<wit::Folder>> {
        let client = match self.table.get_mut(&this)?.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(client.list_folders().await.map_err(plugin_error).map(|folders| {
            folders
                .into_iter()
                .map(|f| wit::Folder {
                    raw: f.raw,
                    name: f.name,
                    delimiter: f.delimiter.map(String::from),
                    selectable: f.selectable,
                })
                .collect()
        }))
    }

    async fn examine(&mut self, this: Resource<Connection>, raw: String) -> Answer<wit::FolderStatus> {
        let client = match self.table.get_mut(&this)?.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(client.examine(&raw).await.map_err(plugin_error).map(|s| wit::FolderStatus {
            uid_validity: s.uid_validity,
            uid_next: s.uid_next,
            exists: s.exists,
        }))
    }

    async fn fetch_meta(&mut self, this: Resource<Connection>, first: u32, last: u32) -> Answer<Vec<wit::MessageMeta>> {
        let client = match self.table.get_mut(&this)?.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(client.fetch_meta(first..=last).await.map_err(plugin_error).map(|metas| {
            metas
                .into_iter()
                .map(|m| wit::MessageMeta { uid: m.uid, flags: m.flags, internal_date: m.internal_date, size: m.size })
                .collect()
        }))
    }

    async fn fetch_bodies(&mut self, this: Resource<Connection>, uids: Vec<u32>) -> Answer<Vec<(u32, Vec<u8>)>> {
        if uids.len() > MAX_FETCH_UIDS {
            return Ok(Err(PluginError::Other(format!(
                "fetch-bodies asked for {} messages at once; the limit is {MAX_FETCH_UIDS}",
                uids.len()
            ))));
        }
        let connection = self.table.get_mut(&this)?;
        let server = connection.server.clone();
        let client = match connection.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let bodies = match client.fetch_bodies(&uids).await {
            Ok(b) => b,
            Err(e) => return Ok(Err(plugin_error(e))),
        };
        let total: usize = bodies.iter().map(|(_, b)| b.len()).sum();
        if total > MAX_FETCH_BYTES {
            return Ok(Err(PluginError::Other(format!(
                "fetch-bodies from IMAP server {server} returned {} MiB at once; the limit is {} MiB, \
                 so fetch fewer messages per call",
                total >> 20,
                MAX_FETCH_BYTES >> 20
            ))));
        }
        Ok(Ok(bodies))
    }

    async fn create_folder(&mut self, this: Resource<Connection>, raw: String) -> Answer<()> {
        let client = match self.table.get_mut(&this)?.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(client.create_folder(&raw).await.map_err(plugin_error))
    }

    async fn append(
        &mut self,
        this: Resource<Connection>,
        raw: String,
        flags: Vec<String>,
        internal_date: i64,
        body: Vec<u8>,
    ) -> Answer<()> {
        let client = match self.table.get_mut(&this)?.client() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(client.append(&raw, &flags, internal_date, &body).await.map_err(plugin_error))
    }

    async fn logout(&mut self, this: Resource<Connection>) -> Answer<()> {
        let connection = self.table.get_mut(&this)?;
        let Some(client) = connection.client.take() else { return Ok(Ok(())) };
        self.imap.open = self.imap.open.saturating_sub(1);
        Ok(client.logout().await.map_err(plugin_error))
    }

    async fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(this)?;
        if connection.client.is_some() {
            self.imap.open = self.imap.open.saturating_sub(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_config::{SecretValue, Secrets};
    use std::collections::BTreeSet;

    fn server(host: &str, port: u16, secret: &str) -> wit::Server {
        wit::Server {
            host: host.into(),
            port,
            security: wit::Security::Tls,
            ca_file: Some("/etc/ca.pem".into()),
            user: "alice".into(),
            password_secret: secret.into(),
        }
    }

    fn secrets() -> SecretsCtx {
        SecretsCtx::new(
            Secrets::from_iter([("password".to_string(), SecretValue::new("hunter2".into()))]),
            BTreeSet::new(),
        )
    }

    #[test]
    fn only_granted_endpoints_with_a_secret_password() {
        let ctx = ImapCtx::new(vec!["mail.example.org:993".into(), "[::1]:143".into()], vec!["/etc/ca.pem".into()]);
        let config = ctx.server_config(&server("mail.example.org", 993, "password"), &secrets()).unwrap();
        assert_eq!(config.server(), "mail.example.org:993");
        assert_eq!(config.ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(ctx.server_config(&server("::1", 143, "password"), &secrets()).is_ok());

        let denied = ctx.server_config(&server("mail.example.org", 143, "password"), &secrets()).unwrap_err();
        assert!(
            matches!(&denied, PluginError::PermissionDenied(m) if m.contains("mail.example.org:143")),
            "{denied:?}"
        );
        let mut other_file = server("mail.example.org", 993, "password");
        other_file.ca_file = Some("/etc/shadow".into());
        let refused = ctx.server_config(&other_file, &secrets()).unwrap_err();
        assert!(matches!(&refused, PluginError::PermissionDenied(m) if m.contains("/etc/shadow")), "{refused:?}");
        let missing = ctx.server_config(&server("mail.example.org", 993, "token"), &secrets()).unwrap_err();
        assert!(matches!(&missing, PluginError::Config(m) if m.starts_with("token: ")), "{missing:?}");
    }

    #[test]
    fn errors_keep_their_sentence_and_map_to_kinds() {
        let auth = ImapError::Auth { server: "h:993".into(), user: "alice".into(), reason: "no".into() };
        assert!(matches!(plugin_error(auth), PluginError::PermissionDenied(m) if m.contains("h:993")));
        let down = ImapError::Unreachable { server: "h:993".into(), reason: "refused".into() };
        assert!(matches!(plugin_error(down), PluginError::Transient(m) if m.contains("h:993")));
        let tls = ImapError::Tls { server: "h:993".into(), reason: "untrusted".into() };
        assert!(matches!(plugin_error(tls), PluginError::PermissionDenied(_)));
        let gone = ImapError::NotFound { server: "h:993".into(), folder: "X".into(), raw: "X".into() };
        assert!(matches!(plugin_error(gone), PluginError::NotFound(_)));
    }
}
