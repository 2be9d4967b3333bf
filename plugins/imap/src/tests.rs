//! The walk against a fake account.

use crate::walk::{Batch, Filter, Log, Mailbox, Walk};
use plugin_sdk::imap::{Folder, FolderStatus, MessageMeta};
use plugin_sdk::{EntryKind, PluginError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;

/// uid → (flags, date, body)
type Messages = BTreeMap<u32, (Vec<String>, i64, Vec<u8>)>;

#[derive(Default)]
struct Account {
    /// raw name → (decoded name, selectable, uidvalidity, messages)
    folders: BTreeMap<String, (String, bool, u32, Messages)>,
    selected: Option<String>,
    fetched: Vec<Vec<u32>>,
    examined: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake(Rc<RefCell<Account>>);

impl Fake {
    fn folder(&self, raw: &str, name: &str, selectable: bool) {
        self.0.borrow_mut().folders.insert(raw.into(), (name.into(), selectable, 7, BTreeMap::new()));
    }
    fn message(&self, raw: &str, uid: u32, flags: &[&str], body: &[u8]) {
        let mut a = self.0.borrow_mut();
        let f = a.folders.get_mut(raw).unwrap();
        f.3.insert(uid, (flags.iter().map(|s| s.to_string()).collect(), 1_700_000_000 + i64::from(uid), body.to_vec()));
    }
}

impl Mailbox for Fake {
    fn list_folders(&mut self) -> Result<Vec<Folder>, PluginError> {
        Ok(self
            .0
            .borrow()
            .folders
            .iter()
            .map(|(raw, (name, selectable, _, _))| Folder {
                raw: raw.clone(),
                name: name.clone(),
                delimiter: Some(".".into()),
                selectable: *selectable,
            })
            .collect())
    }
    fn examine(&mut self, raw: &str) -> Result<FolderStatus, PluginError> {
        let mut a = self.0.borrow_mut();
        a.examined.push(raw.into());
        let Some((_, _, validity, msgs)) = a.folders.get(raw) else {
            return Err(PluginError::NotFound(format!("no folder {raw}")));
        };
        let status = FolderStatus {
            uid_validity: *validity,
            uid_next: msgs.keys().max().map_or(1, |m| m + 1),
            exists: msgs.len() as u32,
        };
        a.selected = Some(raw.into());
        Ok(status)
    }
    fn fetch_meta(&mut self, first: u32, last: u32) -> Result<Vec<MessageMeta>, PluginError> {
        let a = self.0.borrow();
        let msgs = &a.folders[a.selected.as_ref().unwrap()].3;
        Ok(msgs
            .range(first..=last)
            .map(|(uid, (flags, date, body))| MessageMeta {
                uid: *uid,
                flags: flags.clone(),
                internal_date: *date,
                size: body.len() as u64,
            })
            .collect())
    }
    fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, PluginError> {
        let mut a = self.0.borrow_mut();
        a.fetched.push(uids.to_vec());
        let msgs = &a.folders[a.selected.as_ref().unwrap()].3;
        Ok(uids.iter().filter_map(|u| msgs.get(u).map(|m| (*u, m.2.clone()))).collect())
    }
    fn create_folder(&mut self, raw: &str) -> Result<(), PluginError> {
        let mut a = self.0.borrow_mut();
        if !a.folders.contains_key(raw) {
            a.folders.insert(raw.into(), (raw.replace('.', "/"), true, 9, BTreeMap::new()));
        }
        Ok(())
    }
    fn append(&mut self, raw: &str, flags: &[String], internal_date: i64, body: &[u8]) -> Result<(), PluginError> {
        let mut a = self.0.borrow_mut();
        let msgs = &mut a.folders.get_mut(raw).unwrap().3;
        let uid = msgs.keys().max().map_or(1, |m| m + 1);
        msgs.insert(uid, (flags.to_vec(), internal_date, body.to_vec()));
        Ok(())
    }
    fn logout(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Warnings(Rc<RefCell<Vec<String>>>);

impl Log for Warnings {
    fn warn(&mut self, message: String) {
        self.0.borrow_mut().push(message);
    }
}

fn account() -> Fake {
    let fake = Fake::default();
    fake.folder("INBOX", "INBOX", true);
    fake.folder("Archiv", "Archiv", false);
    fake.folder("Archiv.2024", "Archiv.2024", true);
    fake.folder("Entw&APw-rfe", "Entwürfe", true);
    fake.folder("INBOX.cur", "INBOX.cur", true);
    fake.folder("a b", "a b", true);
    for uid in 1..=5 {
        fake.message("INBOX", uid, &["\\Seen"], format!("message {uid}\r\n").as_bytes());
    }
    fake.message("Archiv.2024", 3, &["\\Flagged", "$Forwarded"], b"old\r\n");
    fake
}

fn walk(fake: &Fake, batch: Batch, filter: &Filter) -> (Walk<Fake, Warnings>, Warnings) {
    let log = Warnings::default();
    let walk = Walk::new(fake.clone(), log.clone(), "mail.test:993".into(), filter, batch).unwrap();
    (walk, log)
}

fn all() -> Filter {
    Filter::new(&[], &[]).unwrap()
}

const BATCH: Batch = Batch { messages: 2, bytes: 1 << 20 };

fn paths(walk: &mut Walk<Fake, Warnings>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let batch = walk.next_batch(3).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.iter().map(|e| String::from_utf8(e.path.clone()).unwrap()));
    }
}

#[test]
fn folders_are_maildirs_in_index_order() {
    let fake = account();
    let (mut w, _) = walk(&fake, BATCH, &all());
    let got = paths(&mut w);
    let want = [
        "",
        "Archiv",
        "Archiv/2024",
        "Archiv/2024/cur",
        "Archiv/2024/cur/0000000003.7.imap",
        "Archiv/2024/new",
        "Archiv/2024/tmp",
        "Entwürfe",
        "Entwürfe/cur",
        "Entwürfe/new",
        "Entwürfe/tmp",
        "INBOX",
        "INBOX/%63ur",
        "INBOX/%63ur/cur",
        "INBOX/%63ur/new",
        "INBOX/%63ur/tmp",
        "INBOX/cur",
        "INBOX/cur/0000000001.7.imap",
        "INBOX/cur/0000000002.7.imap",
        "INBOX/cur/0000000003.7.imap",
        "INBOX/cur/0000000004.7.imap",
        "INBOX/cur/0000000005.7.imap",
        "INBOX/new",
        "INBOX/tmp",
        "a b",
        "a b/cur",
        "a b/new",
        "a b/tmp",
    ];
    assert_eq!(got, want);
    // Index order: components compared bytewise, each directory before its children.
    let split: Vec<Vec<&[u8]>> = got.iter().map(|p| p.as_bytes().split(|&b| b == b'/').collect()).collect();
    assert!(split.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn metadata_and_attributes() {
    let fake = account();
    let (mut w, _) = walk(&fake, BATCH, &all());
    let mut entries = Vec::new();
    loop {
        let b = w.next_batch(100).unwrap();
        if b.is_empty() {
            break;
        }
        entries.extend(b);
    }
    let msg = entries.iter().find(|e| e.path == b"Archiv/2024/cur/0000000003.7.imap").unwrap();
    assert_eq!(msg.meta.kind, EntryKind::File);
    assert_eq!(msg.meta.mode, 0o600);
    assert_eq!(msg.meta.size, 5);
    assert_eq!(msg.meta.mtime, 1_700_000_003);
    assert_eq!(
        msg.attributes,
        vec![("imap.flags".into(), "\\Flagged $Forwarded".into()), ("maildir.info".into(), "2,F".into())]
    );
    let folder = entries.iter().find(|e| e.path == b"INBOX").unwrap();
    assert_eq!(folder.meta.kind, EntryKind::Directory);
    assert_eq!(folder.meta.mtime, 1_700_000_005, "the newest message's date, not the run's");
    assert_eq!(entries.iter().find(|e| e.path == b"Archiv").unwrap().meta.mtime, 0);
}

#[test]
fn a_flag_change_changes_attributes_only() {
    let fake = account();
    let collect = |fake: &Fake| {
        let (mut w, _) = walk(fake, BATCH, &all());
        let mut entries = Vec::new();
        loop {
            let b = w.next_batch(100).unwrap();
            if b.is_empty() {
                return entries;
            }
            entries.extend(b);
        }
    };
    let before = collect(&fake);
    fake.message("INBOX", 2, &["\\Seen", "\\Answered"], b"message 2\r\n");
    let after = collect(&fake);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.path, a.path);
        assert_eq!(b.meta, a.meta);
        if b.path != b"INBOX/cur/0000000002.7.imap" {
            assert_eq!(b.attributes, a.attributes);
        }
    }
    let changed = after.iter().find(|e| e.path == b"INBOX/cur/0000000002.7.imap").unwrap();
    assert_eq!(changed.attributes[1].1, "2,RS");
}

fn read(w: &mut Walk<Fake, Warnings>, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    w.open(path.as_bytes()).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn bodies_are_fetched_in_batches_on_open() {
    let fake = account();
    let (mut w, _) = walk(&fake, BATCH, &all());
    let entries = w.next_batch(1000).unwrap();
    assert!(fake.0.borrow().fetched.is_empty(), "listing fetches no body");
    assert!(entries.len() > 20);
    assert_eq!(read(&mut w, "INBOX/cur/0000000001.7.imap"), b"message 1\r\n");
    assert_eq!(read(&mut w, "INBOX/cur/0000000002.7.imap"), b"message 2\r\n");
    // 3 is skipped (unchanged, say): the batch fetched for 4 starts at 4.
    assert_eq!(read(&mut w, "INBOX/cur/0000000004.7.imap"), b"message 4\r\n");
    assert_eq!(read(&mut w, "INBOX/cur/0000000005.7.imap"), b"message 5\r\n");
    assert_eq!(read(&mut w, "Archiv/2024/cur/0000000003.7.imap"), b"old\r\n");
    let a = fake.0.borrow();
    assert_eq!(a.fetched, vec![vec![1, 2], vec![4, 5], vec![3]]);
    // INBOX was examined again before its bodies (a later folder was examined last).
    assert_eq!(a.examined.iter().filter(|f| *f == "INBOX").count(), 2);
}

#[test]
fn batches_respect_the_byte_limit_but_take_one_large_message() {
    let fake = account();
    fake.message("INBOX", 6, &[], &vec![b'x'; 3000]);
    let (mut w, _) = walk(&fake, Batch { messages: 100, bytes: 40 }, &all());
    w.next_batch(1000).unwrap();
    read(&mut w, "INBOX/cur/0000000001.7.imap");
    assert_eq!(read(&mut w, "INBOX/cur/0000000006.7.imap").len(), 3000);
    assert_eq!(fake.0.borrow().fetched, vec![vec![1, 2, 3], vec![6]]);
}

#[test]
fn include_and_exclude_on_decoded_names() {
    let fake = account();
    let filter = Filter::new(&["Archiv/*".into(), "Entw*".into()], &[]).unwrap();
    let (w, _) = walk(&fake, BATCH, &filter);
    assert_eq!(w.folder_names(), vec!["Archiv.2024", "Entwürfe"]);
    let filter = Filter::new(&[], &["INBOX".into(), "a ?".into()]).unwrap();
    let (w, _) = walk(&fake, BATCH, &filter);
    assert_eq!(w.folder_names(), vec!["Archiv.2024", "Entwürfe"], "a parent's exclude takes its children");
    assert!(matches!(Filter::new(&["[".into()], &[]), Err(PluginError::Config(m)) if m.starts_with("include[0]")));
}

#[test]
fn a_vanished_folder_is_a_warning_naming_folder_and_server() {
    let fake = account();
    let (mut w, log) = walk(&fake, BATCH, &all());
    fake.0.borrow_mut().folders.remove("Entw&APw-rfe");
    let got = paths(&mut w);
    assert!(got.contains(&"Entwürfe".to_string()));
    assert!(!got.iter().any(|p| p.starts_with("Entwürfe/")));
    assert!(got.contains(&"INBOX/cur/0000000005.7.imap".to_string()));
    let warnings = log.0.borrow();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("Entwürfe") && warnings[0].contains("mail.test:993"), "{warnings:?}");
}

#[test]
fn a_message_deleted_during_the_run_is_not_found() {
    let fake = account();
    let (mut w, _) = walk(&fake, BATCH, &all());
    w.next_batch(1000).unwrap();
    fake.0.borrow_mut().folders.get_mut("INBOX").unwrap().3.remove(&1);
    let err = w.open(b"INBOX/cur/0000000001.7.imap").err().unwrap();
    assert!(matches!(&err, PluginError::NotFound(m) if m.contains("UID 1") && m.contains("mail.test:993")), "{err:?}");
    assert_eq!(read(&mut w, "INBOX/cur/0000000002.7.imap"), b"message 2\r\n");
    assert!(w.open(b"INBOX/cur/0000000002.8.imap").is_err(), "another UIDVALIDITY is not this run's");
}

#[test]
fn config_defaults_and_wants() {
    let c: crate::Config = plugin_sdk::parse_config(
        r#"{"host": "mail.test", "user": "u", "password": {"secret": "password"}, "security": "starttls"}"#,
    )
    .unwrap();
    assert_eq!(c.endpoint(), "mail.test:143");
    let wants = <crate::Imap as plugin_sdk::Source>::validate(&c).unwrap();
    assert_eq!(wants, vec![plugin_sdk::Want::Connect("mail.test:143".into())]);
    let c: crate::Config =
        plugin_sdk::parse_config(r#"{"host": "mail.test", "user": "u", "password": {"secret": "password"}}"#).unwrap();
    assert_eq!(c.endpoint(), "mail.test:993");
    assert_eq!(c.server().password_secret, "password");
    let plain = |host: &str| {
        let c: crate::Config = plugin_sdk::parse_config(&format!(
            r#"{{"host": "{host}", "user": "u", "password": {{"secret": "password"}}, "security": "plain"}}"#
        ))
        .unwrap();
        c.check().map(|_| ())
    };
    assert!(plain("127.0.0.1").is_ok() && plain("::1").is_ok() && plain("localhost").is_ok());
    assert!(matches!(plain("mail.test"), Err(PluginError::Config(m)) if m.starts_with("security: ")));
    let err = plugin_sdk::parse_config::<crate::Config>(r#"{"host": "h", "user": "u", "password": "hunter2"}"#);
    assert!(matches!(err, Err(PluginError::Config(m)) if m.starts_with("password:")));
}

#[test]
fn target_urls() {
    use crate::writer::TargetUrl;
    let t = TargetUrl::parse("imap://bob%40example.org@mail.test:1143").unwrap();
    assert_eq!(t, TargetUrl { user: "bob@example.org".into(), host: "mail.test".into(), port: Some(1143) });
    let t = TargetUrl::parse("imap://bob@[::1]/").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("::1", None));
    for bad in ["imaps://a@b", "imap://b", "imap://a@b:x", "imap://a@b/INBOX", "imap://@b"] {
        assert!(matches!(TargetUrl::parse(bad), Err(PluginError::Config(_))), "{bad}");
    }
}

#[test]
fn message_ids_and_flags_from_entries() {
    use crate::writer::{entry_flags, message_id};
    assert_eq!(message_id(b"From: a\r\nMessage-Id:\r\n  <x@y>\r\n\r\nbody"), Some(b"<x@y>".to_vec()));
    assert_eq!(message_id(b"From: a\r\n\r\nMessage-ID: <x@y>\r\n"), None);
    let fake = account();
    let (mut w, _) = walk(&fake, BATCH, &all());
    let entries = w.next_batch(1000).unwrap();
    let e = entries.iter().find(|e| e.path == b"Archiv/2024/cur/0000000003.7.imap").unwrap();
    assert_eq!(entry_flags(e), vec!["\\Flagged".to_string(), "$Forwarded".to_string()]);
    let mut e = e.clone();
    e.attributes.retain(|(k, _)| k != "imap.flags");
    assert_eq!(entry_flags(&e), vec!["\\Flagged".to_string()]);
}

#[test]
fn a_restore_appends_with_flags_and_dates_and_skips_what_is_there() {
    use crate::writer::Writer;
    let source = account();
    let (mut w, _) = walk(&source, BATCH, &all());
    // One batch: the walk forgets a folder's messages once it has passed them.
    let entries = w.next_batch(1000).unwrap();
    let target = Fake::default();
    target.folder("INBOX", "INBOX", true);
    let mut restore = |target: &Fake| {
        let mut writer = Writer::new(target.clone(), Warnings::default(), "imap://bob@t:143".into()).unwrap();
        for e in &entries {
            if writer.add(e).unwrap() {
                let body = read(&mut w, std::str::from_utf8(&e.path).unwrap());
                writer.write(&body).unwrap();
                writer.end_entry().unwrap();
            }
        }
        writer.finish().unwrap()
    };
    assert_eq!(restore(&target), "6 messages appended to 5 folders of imap://bob@t:143, 0 already there");
    {
        let a = target.0.borrow();
        let archiv = &a.folders["Archiv.2024"].3;
        assert_eq!(
            archiv[&1],
            (vec!["\\Flagged".to_string(), "$Forwarded".to_string()], 1_700_000_003, b"old\r\n".to_vec())
        );
        assert_eq!(a.folders["INBOX"].3.len(), 5);
        assert!(a.folders.contains_key("Entw&APw-rfe"), "{:?}", a.folders.keys());
        assert!(a.folders.contains_key("INBOX.cur"), "an escaped level is restored by its real name");
    }
    assert_eq!(restore(&target), "0 messages appended to 5 folders of imap://bob@t:143, 6 already there");
    assert_eq!(target.0.borrow().folders["INBOX"].3.len(), 5);
}
