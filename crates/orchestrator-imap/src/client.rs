//! The operations a backup and a restore need, on one logged-in connection.
//!
//! Reading never changes the account: folders are opened with EXAMINE (read
//! only) and bodies fetched with `BODY.PEEK[]`, so no `\Seen` flag is set and
//! no `\Recent` is consumed by a backup run.
//!
//! Commands that return data are run by hand (`run`) rather than through
//! async-imap's helpers, because those drop the tagged status: a `NO` to a
//! FETCH would look like an empty answer, and a backup would silently miss mail.

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, MailboxListData, NameAttribute, RequestId, Response, ResponseCode, Status,
};
use tokio::io::AsyncWriteExt;

use crate::config::ServerConfig;
use crate::connect::{self, Session};
use crate::error::ImapError;
use crate::uidset::UidSet;
use crate::{dates, utf7};

/// One folder as LIST reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The name on the wire (modified UTF-7): what every command takes.
    pub raw: String,
    /// The decoded name for people and paths. If the server sent a name that
    /// is not valid modified UTF-7, this is the raw name unchanged.
    pub name: String,
    pub delimiter: Option<char>,
    /// False for `\Noselect` (and `\NonExistent`) folders, which only hold
    /// children: EXAMINE would fail on them.
    pub selectable: bool,
}

/// What EXAMINE reports. A change of `uid_validity` means every UID known
/// from an earlier run is void and the folder must be read in full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    pub uid_validity: u32,
    /// The UID the next message will get: every message has a lower one.
    pub uid_next: u32,
    pub exists: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    /// As the server spells them: system flags with their backslash
    /// (`\Seen`), keywords without (`$Forwarded`, `Junk`). `\Recent` is left
    /// out: it belongs to the session that first sees a message, not to the
    /// message, and would make every new message look changed on the next run.
    pub flags: Vec<String>,
    /// INTERNALDATE in seconds since the epoch, the server's zone applied.
    pub internal_date: i64,
    /// RFC822.SIZE: the exact length of the body `fetch_bodies` returns.
    pub size: u64,
}

/// A logged-in IMAP connection.
pub struct Client {
    session: Session,
    server: String,
    literal_plus: bool,
}

/// A command's tagged result, with the server's text.
struct Done {
    ok: bool,
    /// NO (refused) rather than BAD (invalid command).
    no: bool,
    text: String,
    try_create: bool,
}

impl Done {
    fn is_ok(&self) -> bool {
        self.ok
    }
}

/// A mailbox name as an IMAP quoted string.
fn quote(server: &str, raw: &str) -> Result<String, ImapError> {
    if raw.contains(['\r', '\n', '\0']) {
        return Err(ImapError::protocol(server, format!("folder name {raw:?} contains a line break or NUL")));
    }
    Ok(format!("\"{}\"", raw.replace('\\', "\\\\").replace('"', "\\\"")))
}

fn folder_name(raw: &str) -> String {
    utf7::decode(raw).unwrap_or_else(|_| raw.to_owned())
}

/// A flag for APPEND: a `\System` flag or a keyword atom.
fn valid_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty() && atom.bytes().all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

impl Client {
    /// Connects, sets up TLS as configured and logs in. Connecting, TLS and the
    /// greeting together are bounded by `connect_timeout`.
    pub async fn connect(config: &ServerConfig) -> Result<Client, ImapError> {
        let connect::LoggedIn { session, literal_plus } = connect::login(config).await?;
        Ok(Client { session, server: config.server(), literal_plus })
    }

    /// `host:port`, as errors name it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Runs `command`, handing every untagged response to `each`, until its tagged result.
    async fn run(
        &mut self,
        command: &str,
        mut each: impl FnMut(&Response<'_>) -> Result<(), ImapError>,
    ) -> Result<Done, ImapError> {
        let tag = self.send(command).await?;
        Ok(self.finish(&tag, false, &mut each).await?.expect("no stop at a continuation"))
    }

    async fn send(&mut self, command: &str) -> Result<RequestId, ImapError> {
        let verb = command.split(' ').take(2).collect::<Vec<_>>().join(" ");
        self.session.run_command(command).await.map_err(|e| ImapError::from_imap(&self.server, &verb, e))
    }

    /// Reads until the tagged result of `tag`, or (if `until_continue`) a
    /// continuation request, which gives `None`.
    async fn finish(
        &mut self,
        tag: &RequestId,
        until_continue: bool,
        each: &mut impl FnMut(&Response<'_>) -> Result<(), ImapError>,
    ) -> Result<Option<Done>, ImapError> {
        loop {
            let response = self
                .session
                .read_response()
                .await
                .map_err(|e| ImapError::from_io(&self.server, &e))?
                .ok_or_else(|| ImapError::unreachable(&self.server, "the server closed the connection"))?;
            match response.parsed() {
                Response::Done { tag: t, status, outcome } if t == tag => {
                    let try_create = matches!(outcome.code, Some(ResponseCode::TryCreate));
                    let text = outcome.information.as_deref().unwrap_or("").to_owned();
                    return Ok(Some(Done { ok: *status == Status::Ok, no: *status == Status::No, text, try_create }));
                }
                Response::Continue(_) if until_continue => return Ok(None),
                Response::Data { status: Status::Bye, outcome } => {
                    let text = outcome.information.as_deref().unwrap_or("(no reason given)");
                    return Err(ImapError::unreachable(
                        &self.server,
                        format!("the server closed the connection: {text}"),
                    ));
                }
                other => each(other)?,
            }
        }
    }

    fn refused(&self, command: &str, done: &Done) -> ImapError {
        let what = if done.no { "refused" } else { "rejected as invalid (BAD)" };
        ImapError::protocol(&self.server, format!("{command} was {what}: {}", done.text))
    }

    fn not_found(&self, raw: &str) -> ImapError {
        ImapError::NotFound { server: self.server.clone(), folder: folder_name(raw), raw: raw.to_owned() }
    }

    /// Every folder of the account, `\Noselect` ones included (marked), in the
    /// server's order.
    pub async fn list_folders(&mut self) -> Result<Vec<Folder>, ImapError> {
        let mut folders = Vec::new();
        let done = self
            .run("LIST \"\" \"*\"", |response: &Response<'_>| {
                if let Response::MailboxData(MailboxDatum::List(MailboxListData { name_attributes, delimiter, name })) =
                    response
                {
                    let selectable = !name_attributes.iter().any(|a| match a {
                        NameAttribute::NoSelect => true,
                        NameAttribute::Extension(e) => e.eq_ignore_ascii_case("\\NonExistent"),
                        _ => false,
                    });
                    folders.push(Folder {
                        raw: name.to_string(),
                        name: folder_name(name.as_ref()),
                        delimiter: delimiter.as_deref().and_then(|d| d.chars().next()),
                        selectable,
                    });
                }
                Ok(())
            })
            .await?;
        if !done.is_ok() {
            return Err(self.refused("LIST", &done));
        }
        Ok(folders)
    }

    /// Opens `raw` read-only (EXAMINE, never SELECT): no flag can change
    /// through this connection until another folder is opened.
    pub async fn examine(&mut self, raw: &str) -> Result<FolderStatus, ImapError> {
        let (mut uid_validity, mut uid_next, mut exists) = (None, None, None);
        let command = format!("EXAMINE {}", quote(&self.server, raw)?);
        let done = self
            .run(&command, |response: &Response<'_>| {
                match response {
                    Response::Data { status: Status::Ok, outcome } => match outcome.code {
                        Some(ResponseCode::UidValidity(v)) => uid_validity = Some(v),
                        Some(ResponseCode::UidNext(v)) => uid_next = Some(v),
                        _ => {}
                    },
                    Response::MailboxData(MailboxDatum::Exists(n)) => exists = Some(*n),
                    _ => {}
                }
                Ok(())
            })
            .await?;
        if !done.is_ok() {
            let text = done.text.to_ascii_lowercase();
            if done.no && (text.contains("[nonexistent]") || text.contains("not exist") || text.contains("n't exist")) {
                return Err(self.not_found(raw));
            }
            return Err(self.refused(&format!("EXAMINE of {:?}", folder_name(raw)), &done));
        }
        let missing = |what: &str| ImapError::protocol(&self.server, format!("EXAMINE of {raw:?} gave no {what}"));
        Ok(FolderStatus {
            uid_validity: uid_validity.ok_or_else(|| missing("UIDVALIDITY"))?,
            uid_next: uid_next.ok_or_else(|| missing("UIDNEXT"))?,
            exists: exists.ok_or_else(|| missing("EXISTS"))?,
        })
    }

    /// Flags, internal date and size of the messages in `uids` that exist, in
    /// UID order, from the folder last examined. UIDs that are gone are simply
    /// absent. Keep a set's wire form under the server's line limit (Dovecot:
    /// 64 KiB); ranges are compact, so `first..=last` is always safe.
    pub async fn fetch_meta(&mut self, uids: impl Into<UidSet>) -> Result<Vec<MessageMeta>, ImapError> {
        let uids = uids.into();
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let server = self.server.clone();
        let mut metas = Vec::new();
        let command = format!("UID FETCH {} (UID FLAGS INTERNALDATE RFC822.SIZE)", uids.to_imap());
        let done = self
            .run(&command, |response: &Response<'_>| {
                let Response::Fetch(_, attrs) = response else { return Ok(()) };
                let (mut uid, mut flags, mut date, mut size) = (None, None, None, None);
                for attr in attrs {
                    match attr {
                        AttributeValue::Uid(u) => uid = Some(*u),
                        AttributeValue::Flags(f) => {
                            flags = Some(
                                f.iter()
                                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                                    .map(|f| f.to_string())
                                    .collect(),
                            )
                        }
                        AttributeValue::InternalDate(d) => date = Some(d.to_string()),
                        AttributeValue::Rfc822Size(s) => size = Some(u64::from(*s)),
                        _ => {}
                    }
                }
                // Unsolicited FETCHes (flag changes by other clients) carry no UID or not all items.
                let Some(uid) = uid.filter(|u| uids.contains(*u)) else { return Ok(()) };
                let (Some(flags), Some(date), Some(size)) = (flags, date, size) else { return Ok(()) };
                let internal_date = dates::parse(&date).ok_or_else(|| {
                    ImapError::protocol(&server, format!("message UID {uid} has an unreadable INTERNALDATE {date:?}"))
                })?;
                metas.push(MessageMeta { uid, flags, internal_date, size });
                Ok(())
            })
            .await?;
        if !done.is_ok() {
            return Err(self.refused("UID FETCH", &done));
        }
        metas.sort_by_key(|m| m.uid);
        metas.dedup_by_key(|m| m.uid);
        Ok(metas)
    }

    /// The exact bytes of each message in `uids` that still exists, in UID
    /// order, fetched with `BODY.PEEK[]` so `\Seen` is never set. All of them
    /// are held in memory at once: callers batch (by the sizes from
    /// `fetch_meta`) so a batch stays a few MiB.
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        let set = UidSet::from(uids);
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let mut bodies = Vec::with_capacity(uids.len());
        let command = format!("UID FETCH {} (UID BODY.PEEK[])", set.to_imap());
        let done = self
            .run(&command, |response: &Response<'_>| {
                let Response::Fetch(_, attrs) = response else { return Ok(()) };
                let uid = attrs.iter().find_map(|a| match a {
                    AttributeValue::Uid(u) => Some(*u),
                    _ => None,
                });
                let body = attrs.iter().find_map(|a| match a {
                    AttributeValue::BodySection { section: None, data, .. } => Some(data.as_deref().unwrap_or(&[])),
                    _ => None,
                });
                if let (Some(uid), Some(body)) = (uid, body)
                    && set.contains(uid)
                {
                    bodies.push((uid, body.to_vec()));
                }
                Ok(())
            })
            .await?;
        if !done.is_ok() {
            return Err(self.refused("UID FETCH", &done));
        }
        bodies.sort_by_key(|(uid, _)| *uid);
        bodies.dedup_by_key(|(uid, _)| *uid);
        Ok(bodies)
    }

    /// Creates a folder; one that already exists is fine (a restore may run twice).
    pub async fn create_folder(&mut self, raw: &str) -> Result<(), ImapError> {
        let command = format!("CREATE {}", quote(&self.server, raw)?);
        let done = self.run(&command, |_| Ok(())).await?;
        let text = done.text.to_ascii_lowercase();
        if done.is_ok() || text.contains("[alreadyexists]") || text.contains("already exists") {
            return Ok(());
        }
        Err(self.refused(&format!("CREATE of {:?}", folder_name(raw)), &done))
    }

    /// Stores a message with its flags and internal date (a restore). `\Recent`
    /// is dropped: only the server may set it.
    pub async fn append(
        &mut self,
        raw: &str,
        flags: &[String],
        internal_date: i64,
        body: &[u8],
    ) -> Result<(), ImapError> {
        let flags: Vec<&str> =
            flags.iter().map(String::as_str).filter(|f| !f.eq_ignore_ascii_case("\\Recent")).collect();
        if let Some(bad) = flags.iter().find(|f| !valid_flag(f)) {
            return Err(ImapError::protocol(&self.server, format!("{bad:?} is not a valid IMAP flag")));
        }
        let date = dates::format(internal_date).ok_or_else(|| {
            ImapError::protocol(&self.server, format!("internal date {internal_date} is outside the years 0000-9999"))
        })?;
        let plus = if self.literal_plus { "+" } else { "" };
        let command =
            format!("APPEND {} ({}) \"{date}\" {{{}{plus}}}", quote(&self.server, raw)?, flags.join(" "), body.len());
        let tag = self.send(&command).await?;
        // Without LITERAL+ the server answers `+` (send the literal) or, at once, the tagged result.
        if !self.literal_plus
            && let Some(done) = self.finish(&tag, true, &mut |_| Ok(())).await?
        {
            return Err(self.append_failed(raw, &done));
        }
        let io = |e: std::io::Error| ImapError::from_io(&self.server, &e);
        let stream = self.session.get_mut();
        stream.write_all(body).await.map_err(io)?;
        stream.write_all(b"\r\n").await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let done = self.finish(&tag, false, &mut |_| Ok(())).await?.expect("no stop at a continuation");
        if done.is_ok() { Ok(()) } else { Err(self.append_failed(raw, &done)) }
    }

    fn append_failed(&self, raw: &str, done: &Done) -> ImapError {
        if done.try_create || done.text.to_ascii_lowercase().contains("[nonexistent]") {
            self.not_found(raw)
        } else {
            self.refused(&format!("APPEND to {:?}", folder_name(raw)), done)
        }
    }

    /// Ends the session politely (the server logs the session's statistics).
    pub async fn logout(mut self) -> Result<(), ImapError> {
        // async-imap's LOGOUT expects the `* BYE` that `run` treats as a lost connection.
        self.session.logout().await.map_err(|e| ImapError::from_imap(&self.server, "LOGOUT", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        for good in ["\\Seen", "\\Answered", "$Forwarded", "Junk", "$label1"] {
            assert!(valid_flag(good), "{good}");
        }
        for bad in ["", "\\", "two words", "(x", "a\"b", "x]"] {
            assert!(!valid_flag(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote("s", "a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert!(quote("s", "a\r\nb").is_err());
    }
}
