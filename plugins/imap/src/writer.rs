//! `restore --to imap://user@host[:port]`: the Maildirs of a backup written
//! back into an account. Each folder's `cur/` (and `new/`) creates the folder
//! (CREATE; an existing one is kept) and its messages are APPENDed with their
//! flags (the `imap.flags` attribute, else `maildir.info`) and INTERNALDATE
//! (the file's mtime).
//!
//! A message the target folder already holds is skipped, so a restore can be
//! run again without duplicates: the same INTERNALDATE and size, and the same
//! `Message-ID` header (or, without one, the same bytes). Only messages whose
//! date and size match one in the target cost a fetch of that message.

use crate::names;
use crate::walk::{Log, Mailbox};
use orchestrator_imap::utf7;
use plugin_sdk::{Entry, EntryKind, PluginError};
use std::collections::HashMap;

/// Where `restore --to` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// The login name (percent-decoded).
    pub user: String,
    /// Host name or address (without brackets).
    pub host: String,
    /// The port, when the URL names one.
    pub port: Option<u16>,
}

fn percent_decode(s: &str) -> String {
    names::level(s)
}

impl TargetUrl {
    /// Parse `imap://user@host[:port][/]`.
    pub fn parse(url: &str) -> Result<TargetUrl, PluginError> {
        let bad =
            |why: &str| PluginError::Config(format!("restore target {url:?}: {why}; expected imap://user@host[:port]"));
        let rest = url.strip_prefix("imap://").ok_or_else(|| bad("not an imap:// URL"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(bad("a path after the server is not supported"));
        }
        let (user, server) = authority.rsplit_once('@').ok_or_else(|| bad("it names no user"))?;
        if user.is_empty() {
            return Err(bad("the user is empty"));
        }
        let (host, port) = if let Some(v6) = server.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host.to_string(), after.strip_prefix(':'))
        } else {
            match server.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (server.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port is not a number"))?),
        };
        Ok(TargetUrl { user: percent_decode(user), host, port })
    }
}

/// The `Message-ID` header's value, unfolded and trimmed.
pub fn message_id(body: &[u8]) -> Option<Vec<u8>> {
    let mut lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let mut value = line[11..].to_vec();
            for more in lines.by_ref() {
                if more.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                    value.extend_from_slice(more);
                } else {
                    break;
                }
            }
            let trimmed: Vec<u8> = value.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
            return (!trimmed.is_empty()).then_some(trimmed);
        }
    }
    None
}

/// The flags to APPEND for an entry: `imap.flags`, else the letters of `maildir.info`.
pub fn entry_flags(entry: &Entry) -> Vec<String> {
    let attr = |k: &str| entry.attributes.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if let Some(flags) = attr("imap.flags") {
        return flags.split_whitespace().map(str::to_string).collect();
    }
    let info = attr("maildir.info").unwrap_or("");
    let letters = info.strip_prefix("2,").unwrap_or("");
    let mut flags = Vec::new();
    for (letter, flag) in
        [('D', "\\Draft"), ('F', "\\Flagged"), ('R', "\\Answered"), ('S', "\\Seen"), ('T', "\\Deleted")]
    {
        if letters.contains(letter) {
            flags.push(flag.to_string());
        }
    }
    flags
}

/// The folder being written.
struct Current {
    /// Its path in the backup (components).
    path: Vec<Vec<u8>>,
    raw: String,
    /// UIDs in the target by (INTERNALDATE, size).
    known: HashMap<(i64, u64), Vec<u32>>,
}

/// A message whose content is arriving.
struct Incoming {
    flags: Vec<String>,
    date: i64,
    body: Vec<u8>,
}

/// Writes restored entries into an account.
pub struct Writer<M: Mailbox, L: Log> {
    mailbox: M,
    log: L,
    /// `imap://user@host:port`, for messages.
    target: String,
    delimiter: String,
    current: Option<Current>,
    incoming: Option<Incoming>,
    /// Messages appended, skipped as already there, folders written.
    pub appended: u64,
    /// Messages the target already held.
    pub skipped: u64,
    /// Folders written.
    pub folders: u64,
}

impl<M: Mailbox, L: Log> Writer<M, L> {
    /// A writer into the account `mailbox` is logged in to.
    pub fn new(mut mailbox: M, log: L, target: String) -> Result<Self, PluginError> {
        let delimiter = mailbox.list_folders()?.into_iter().find_map(|f| f.delimiter).unwrap_or_else(|| "/".into());
        Ok(Writer {
            mailbox,
            log,
            target,
            delimiter,
            current: None,
            incoming: None,
            appended: 0,
            skipped: 0,
            folders: 0,
        })
    }

    fn open_folder(&mut self, path: Vec<Vec<u8>>) -> Result<(), PluginError> {
        let levels: Vec<String> = path.iter().map(|c| names::level(&String::from_utf8_lossy(c))).collect();
        let name = levels.join(&self.delimiter);
        let raw = if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_string() } else { utf7::encode(&name) };
        if raw != "INBOX" {
            self.mailbox.create_folder(&raw)?;
        }
        let status = self.mailbox.examine(&raw)?;
        let metas = if status.uid_next > 1 { self.mailbox.fetch_meta(1, status.uid_next - 1)? } else { Vec::new() };
        let mut known: HashMap<(i64, u64), Vec<u32>> = HashMap::new();
        for m in metas {
            known.entry((m.internal_date, m.size)).or_default().push(m.uid);
        }
        self.folders += 1;
        self.current = Some(Current { path, raw, known });
        Ok(())
    }

    /// The next entry; `true` when its content is wanted (a message).
    pub fn add(&mut self, entry: &Entry) -> Result<bool, PluginError> {
        self.incoming = None;
        let parts: Vec<Vec<u8>> = entry.path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let n = parts.len();
        match entry.meta.kind {
            EntryKind::Directory if n >= 2 && parts[n - 1] == b"cur" => {
                self.open_folder(parts[..n - 1].to_vec())?;
                Ok(false)
            }
            EntryKind::File if n >= 3 && (parts[n - 2] == b"cur" || parts[n - 2] == b"new") => {
                if self.current.as_ref().is_none_or(|c| c.path != parts[..n - 2]) {
                    self.log.warn(format!(
                        "{} is not in a folder's cur/ after the folder; not restored to {}",
                        String::from_utf8_lossy(&entry.path),
                        self.target
                    ));
                    return Ok(false);
                }
                self.incoming = Some(Incoming {
                    flags: entry_flags(entry),
                    date: entry.meta.mtime,
                    body: Vec::with_capacity(entry.meta.size.min(64 << 20) as usize),
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The next chunk of the current message.
    pub fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        match &mut self.incoming {
            Some(m) => {
                m.body.extend_from_slice(data);
                Ok(())
            }
            None => Err(PluginError::Other("content for an entry the writer did not want".into())),
        }
    }

    /// The current message is complete: APPEND it unless the folder has it.
    pub fn end_entry(&mut self) -> Result<(), PluginError> {
        let Some(m) = self.incoming.take() else { return Ok(()) };
        let current = self.current.as_ref().expect("a message is only wanted inside a folder");
        // By the size of the content itself: a sink may not know a file's
        // size before its content is read (duplicity's multivol files).
        let candidates = current.known.get(&(m.date, m.body.len() as u64)).cloned().unwrap_or_default();
        if !candidates.is_empty() {
            let ours = message_id(&m.body);
            let theirs = self.mailbox.fetch_bodies(&candidates)?;
            let duplicate = theirs.iter().any(|(_, body)| match &ours {
                Some(id) => message_id(body).as_ref() == Some(id),
                None => *body == m.body,
            });
            if duplicate {
                self.skipped += 1;
                return Ok(());
            }
        }
        self.mailbox.append(&current.raw, &m.flags, m.date, &m.body)?;
        self.appended += 1;
        Ok(())
    }

    /// All entries were given: log out and say what was done.
    pub fn finish(&mut self) -> Result<String, PluginError> {
        self.mailbox.logout()?;
        Ok(format!(
            "{} messages appended to {} folders of {}, {} already there",
            self.appended, self.folders, self.target, self.skipped
        ))
    }
}
