//! One run over an account: the folders as a tree of Maildirs in duplicity
//! order, metadata from one `UID FETCH` per folder, bodies only when the host
//! opens a message, fetched in batches of the messages that follow it.
//!
//! Plain Rust over the [`Mailbox`] and [`Log`] traits, so it is tested
//! natively with a fake account; in the component the mailbox is the host's
//! `imap` capability.

use crate::names;
use plugin_sdk::imap::{Folder, FolderStatus, MessageMeta};
use plugin_sdk::{Entry, EntryKind, Metadata, PluginError};
use plugin_tree_walk::glob_set;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;

/// What the walk needs from an IMAP connection.
pub trait Mailbox {
    /// Every folder, `\Noselect` ones marked.
    fn list_folders(&mut self) -> Result<Vec<Folder>, PluginError>;
    /// Open a folder read-only.
    fn examine(&mut self, raw: &str) -> Result<FolderStatus, PluginError>;
    /// Metadata of UIDs `first..=last` of the examined folder.
    fn fetch_meta(&mut self, first: u32, last: u32) -> Result<Vec<MessageMeta>, PluginError>;
    /// Bodies of `uids` of the examined folder.
    fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, PluginError>;
    /// Create a folder (an existing one is fine); for restores.
    fn create_folder(&mut self, raw: &str) -> Result<(), PluginError>;
    /// Store a message with flags and INTERNALDATE; for restores.
    fn append(&mut self, raw: &str, flags: &[String], internal_date: i64, body: &[u8]) -> Result<(), PluginError>;
    /// End the session.
    fn logout(&mut self) -> Result<(), PluginError>;
}

/// Where the walk reports what it skips.
pub trait Log {
    /// Something the user should know (counted in the run's summary).
    fn warn(&mut self, message: String);
    /// What the walk is doing now, for the progress line.
    fn status(&mut self, _message: String) {}
}

/// Which folders are backed up: glob patterns on decoded names with `/`
/// between levels (`*` stays within a level, `**` crosses levels). A folder
/// is taken when it or a parent matches an include (all, without includes)
/// and neither it nor a parent matches an exclude.
#[derive(Debug, Clone)]
pub struct Filter {
    include: globset::GlobSet,
    exclude: globset::GlobSet,
}

impl Filter {
    /// Compile the patterns; a bad one is a config error naming its key and index.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, PluginError> {
        Ok(Filter { include: glob_set("include", include)?, exclude: glob_set("exclude", exclude)? })
    }

    /// Whether the folder with these levels is backed up.
    pub fn takes(&self, levels: &[&str]) -> bool {
        let prefixes: Vec<String> = (1..=levels.len()).map(|n| levels[..n].join("/")).collect();
        let included = self.include.is_empty() || prefixes.iter().any(|p| self.include.is_match(p));
        included && !prefixes.iter().any(|p| self.exclude.is_match(p))
    }
}

/// Batch limits for fetching bodies.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Most messages per fetch.
    pub messages: usize,
    /// Most bytes per fetch (a larger message is fetched alone).
    pub bytes: u64,
}

/// Bodies fetched ahead, (uid, bytes) in listing order.
type Bodies = VecDeque<(u32, Vec<u8>)>;

/// One node of the tree, in index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// A directory that is no folder (the root, a `\Noselect` or excluded parent).
    Plain,
    /// A folder's own directory.
    Folder(usize),
    /// A folder's `cur/` (its messages follow it), `new/` or `tmp/`.
    Sub(usize, &'static str),
}

/// A folder read in this run.
struct Loaded {
    status: FolderStatus,
    metas: Vec<MessageMeta>,
}

/// One run's walk.
pub struct Walk<M: Mailbox, L: Log> {
    mailbox: M,
    log: L,
    /// `host:port`, for messages.
    server: String,
    batch: Batch,
    folders: Vec<Folder>,
    nodes: Vec<(Vec<Vec<u8>>, Node)>,
    pos: usize,
    /// Messages of the `cur/` just yielded, still to yield: (folder, index in its metas).
    pending: Option<(usize, usize)>,
    loaded: HashMap<usize, Loaded>,
    /// Folders that vanished during the run.
    vanished: Vec<usize>,
    /// Folders whose walk ended in an earlier `next`: dropped at the next one.
    passed: Vec<usize>,
    /// The `cur/` path of each folder, for `open`.
    cur_paths: HashMap<Vec<u8>, usize>,
    /// The same by folder.
    cur_by_folder: Vec<Vec<u8>>,
    /// The folder last examined.
    selected: Option<usize>,
    /// Bodies fetched ahead, in listing order, of one folder.
    cache: Option<(usize, Bodies)>,
    /// Bodies fetched in this run, and fetch calls (for the debug log and tests).
    pub bodies_fetched: u64,
    /// `fetch-bodies` calls made.
    pub fetches: u64,
}

fn dir(path: Vec<u8>, mtime: i64) -> Entry {
    Entry {
        path,
        meta: Metadata {
            kind: EntryKind::Directory,
            mode: 0o700,
            uid: 0,
            gid: 0,
            mtime,
            mtime_nsec: 0,
            size: 0,
            symlink_target: None,
            device: None,
        },
        attributes: Vec::new(),
    }
}

fn join(components: &[Vec<u8>]) -> Vec<u8> {
    components.join(&b'/')
}

impl<M: Mailbox, L: Log> Walk<M, L> {
    /// List the account's folders and lay out the tree; nothing else is read yet.
    pub fn new(mut mailbox: M, log: L, server: String, filter: &Filter, batch: Batch) -> Result<Self, PluginError> {
        let listed = mailbox.list_folders()?;
        let mut tree: BTreeMap<Vec<Vec<u8>>, Node> = BTreeMap::new();
        tree.insert(Vec::new(), Node::Plain);
        let mut folders = Vec::new();
        let mut log = log;
        for folder in listed {
            if !folder.selectable {
                continue;
            }
            let levels = names::levels(&folder.name, folder.delimiter.as_deref());
            if !filter.takes(&levels) {
                continue;
            }
            let path: Vec<Vec<u8>> = levels.iter().map(|l| names::component(l).into_bytes()).collect();
            if matches!(tree.get(&path), Some(Node::Folder(_))) {
                log.warn(format!(
                    "IMAP server {server} lists two folders named {:?}; only the first is backed up",
                    folder.name
                ));
                continue;
            }
            let idx = folders.len();
            for n in 1..path.len() {
                tree.entry(path[..n].to_vec()).or_insert(Node::Plain);
            }
            for sub in ["cur", "new", "tmp"] {
                let mut p = path.clone();
                p.push(sub.as_bytes().to_vec());
                tree.insert(p, Node::Sub(idx, sub));
            }
            tree.insert(path, Node::Folder(idx));
            folders.push(folder);
        }
        let mut cur_paths = HashMap::new();
        let mut cur_by_folder = vec![Vec::new(); folders.len()];
        for (path, node) in &tree {
            if let Node::Sub(idx, "cur") = node {
                cur_paths.insert(join(path), *idx);
                cur_by_folder[*idx] = join(path);
            }
        }
        Ok(Walk {
            mailbox,
            log,
            server,
            batch,
            folders,
            nodes: tree.into_iter().collect(),
            pos: 0,
            pending: None,
            loaded: HashMap::new(),
            vanished: Vec::new(),
            passed: Vec::new(),
            cur_paths,
            cur_by_folder,
            selected: None,
            cache: None,
            bodies_fetched: 0,
            fetches: 0,
        })
    }

    /// The folders that will be read, by decoded name.
    pub fn folder_names(&self) -> Vec<&str> {
        self.folders.iter().map(|f| f.name.as_str()).collect()
    }

    /// EXAMINE a folder and read its messages' metadata. `false`: it vanished.
    fn load(&mut self, idx: usize) -> Result<bool, PluginError> {
        let raw = self.folders[idx].raw.clone();
        self.log.status(format!("reading folder {}", self.folders[idx].name));
        let status = match self.mailbox.examine(&raw) {
            Ok(s) => s,
            Err(PluginError::NotFound(_)) => {
                self.log.warn(format!(
                    "folder {:?} on IMAP server {} vanished during the run; it is not in this backup",
                    self.folders[idx].name, self.server
                ));
                self.vanished.push(idx);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.selected = Some(idx);
        let metas = if status.exists == 0 || status.uid_next <= 1 {
            Vec::new()
        } else {
            self.mailbox.fetch_meta(1, status.uid_next - 1)?
        };
        self.loaded.insert(idx, Loaded { status, metas });
        Ok(true)
    }

    fn message_entry(&self, idx: usize, i: usize, cur: &[u8]) -> Entry {
        let loaded = &self.loaded[&idx];
        let m = &loaded.metas[i];
        let mut path = cur.to_vec();
        path.push(b'/');
        path.extend_from_slice(names::message_file(m.uid, loaded.status.uid_validity).as_bytes());
        Entry {
            path,
            meta: Metadata {
                kind: EntryKind::File,
                mode: 0o600,
                uid: 0,
                gid: 0,
                mtime: m.internal_date,
                mtime_nsec: 0,
                size: m.size,
                symlink_target: None,
                device: None,
            },
            attributes: vec![
                ("imap.flags".into(), names::flags_attribute(&m.flags)),
                ("maildir.info".into(), names::maildir_info(&m.flags)),
            ],
        }
    }

    /// A folder's directory time: its newest message's INTERNALDATE, so it
    /// stays the same while nothing arrives (0 when empty).
    fn folder_mtime(&self, idx: usize) -> i64 {
        self.loaded.get(&idx).and_then(|l| l.metas.iter().map(|m| m.internal_date).max()).unwrap_or(0)
    }

    /// Up to `max` further entries.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Entry>, PluginError> {
        for idx in std::mem::take(&mut self.passed) {
            self.loaded.remove(&idx);
            if self.cache.as_ref().is_some_and(|(f, _)| *f == idx) {
                self.cache = None;
            }
        }
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            if let Some((idx, i)) = self.pending {
                if i < self.loaded[&idx].metas.len() {
                    out.push(self.message_entry(idx, i, &self.cur_by_folder[idx]));
                    self.pending = Some((idx, i + 1));
                    continue;
                }
                self.pending = None;
            }
            let Some((path, node)) = self.nodes.get(self.pos).cloned() else { break };
            self.pos += 1;
            match node {
                Node::Plain => out.push(dir(join(&path), 0)),
                Node::Folder(idx) => {
                    self.load(idx)?;
                    out.push(dir(join(&path), self.folder_mtime(idx)));
                }
                Node::Sub(idx, sub) => {
                    if self.vanished.contains(&idx) {
                        continue;
                    }
                    out.push(dir(join(&path), self.folder_mtime(idx)));
                    match sub {
                        "cur" => self.pending = Some((idx, 0)),
                        "tmp" => self.passed.push(idx),
                        _ => {}
                    }
                }
            }
        }
        Ok(out)
    }

    fn not_found(&self, idx: usize, uid: u32) -> PluginError {
        PluginError::NotFound(format!(
            "message UID {uid} of folder {:?} on IMAP server {} is gone (deleted during the run)",
            self.folders[idx].name, self.server
        ))
    }

    /// The body of the message at `path`: from the batch fetched ahead, or
    /// fetched now with the messages that follow it.
    pub fn open(&mut self, path: &[u8]) -> Result<Box<dyn Read>, PluginError> {
        let unknown =
            || PluginError::NotFound(format!("{} is not a message of this run", String::from_utf8_lossy(path)));
        let slash = path.iter().rposition(|&b| b == b'/').ok_or_else(unknown)?;
        let idx = *self.cur_paths.get(&path[..slash]).ok_or_else(unknown)?;
        let (uid, validity) = names::parse_message_file(&path[slash + 1..]).ok_or_else(unknown)?;
        let loaded = self.loaded.get(&idx).ok_or_else(unknown)?;
        if loaded.status.uid_validity != validity {
            return Err(unknown());
        }
        let pos = loaded.metas.binary_search_by_key(&uid, |m| m.uid).map_err(|_| unknown())?;

        if let Some((folder, queue)) = &mut self.cache
            && *folder == idx
        {
            // Bodies the walk has passed are not wanted any more.
            while queue.front().is_some_and(|(u, _)| *u < uid) {
                queue.pop_front();
            }
            if queue.front().is_some_and(|(u, _)| *u == uid) {
                let (_, body) = queue.pop_front().expect("front");
                return Ok(Box::new(std::io::Cursor::new(body)));
            }
        }
        self.cache = None;

        let (mut uids, mut bytes) = (Vec::new(), 0u64);
        for m in &loaded.metas[pos..] {
            if !uids.is_empty() && (uids.len() >= self.batch.messages || bytes + m.size > self.batch.bytes) {
                break;
            }
            uids.push(m.uid);
            bytes += m.size;
        }
        let expected = loaded.status.uid_validity;
        if self.selected != Some(idx) {
            let raw = self.folders[idx].raw.clone();
            let status = self.mailbox.examine(&raw)?;
            self.selected = Some(idx);
            if status.uid_validity != expected {
                return Err(PluginError::NotFound(format!(
                    "folder {:?} on IMAP server {} changed its UIDVALIDITY during the run; its messages \
                     are read in full by the next run",
                    self.folders[idx].name, self.server
                )));
            }
        }
        let bodies = self.mailbox.fetch_bodies(&uids)?;
        self.fetches += 1;
        self.bodies_fetched += bodies.len() as u64;
        let mut queue: Bodies = bodies.into();
        while queue.front().is_some_and(|(u, _)| *u < uid) {
            queue.pop_front();
        }
        let found = queue.front().is_some_and(|(u, _)| *u == uid);
        if !found {
            self.cache = Some((idx, queue));
            return Err(self.not_found(idx, uid));
        }
        let (_, body) = queue.pop_front().expect("front");
        self.cache = Some((idx, queue));
        Ok(Box::new(std::io::Cursor::new(body)))
    }

    /// End the session.
    pub fn finish(&mut self) -> Result<(), PluginError> {
        self.cache = None;
        self.loaded.clear();
        self.mailbox.logout()
    }
}
