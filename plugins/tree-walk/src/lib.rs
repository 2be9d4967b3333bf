//! The walk: depth first, each directory right before its children, children
//! in bytewise order of name (duplicity's index order, spec §3.3).
//!
//! Memory holds one open listing per level of the current path, never the
//! whole tree: a listing fetches its children from the host in batches.
//!
//! Shared by the sources that read file trees (`directory`, and
//! `truenas-dataset` over a snapshot, locally or over SFTP); each supplies
//! its [`Tree`]. It is its own crate, not a module of a plugin, because a
//! plugin crate exports its component and must not be linked into another.

use plugin_sdk::{Content, Entry, EntryKind, Metadata, PluginError};

/// A child of a directory: its name, and its metadata or why it could not be read.
pub type Child = (Vec<u8>, Result<Metadata, PluginError>);

/// What the walk needs from a file system. Paths are absolute, as bytes.
pub trait Tree {
    /// A directory's children, sorted bytewise by name.
    type Listing: Iterator<Item = Result<Child, PluginError>>;
    /// Metadata without following a final symlink.
    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError>;
    /// The children of a directory, sorted bytewise by name.
    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError>;
    /// A regular file's content.
    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError>;
    /// The same, as the host reads it (see [`Session::open_content`](plugin_sdk::Session::open_content)).
    fn open_content(&self, path: &[u8]) -> Result<Content, PluginError> {
        self.open(path).map(Content::Reader)
    }
}

/// Where the walk reports what it skips. In the component this is the host's
/// log (a warning there counts in the run's summary); in tests, a list.
pub trait Log {
    /// Something the user should know about: an entry that is not backed up.
    fn warn(&mut self, message: String);
    /// Detail for `--log debug`.
    fn debug(&mut self, message: String);
}

/// Glob patterns of the config key `key` as one set: `*` stays within a
/// path level, `**` crosses levels, `\` escapes, and a leading or trailing
/// `/` is dropped. A bad pattern is a config error naming the key and index
/// (`exclude[1]: …`).
pub fn glob_set(key: &str, patterns: &[String]) -> Result<globset::GlobSet, PluginError> {
    let mut builder = globset::GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = globset::GlobBuilder::new(p.trim_matches('/'))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| PluginError::Config(format!("{key}[{i}]: invalid glob {p:?}: {}", e.kind())))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| PluginError::Config(format!("{key}: {e}")))
}

/// Compiled exclude patterns.
#[derive(Debug, Clone)]
pub struct Excludes {
    set: globset::GlobSet,
}

impl Excludes {
    /// Compile `patterns`; a bad one is a config error naming its index
    /// (`exclude[1]: …`, as the SDK names the key in its own errors).
    ///
    /// Patterns are relative to the root, so a leading `/` is redundant and a
    /// trailing `/` (a directory, in other tools) is dropped: `/cache/` means
    /// `cache`.
    pub fn new(patterns: &[String]) -> Result<Excludes, PluginError> {
        Ok(Excludes { set: glob_set("exclude", patterns)? })
    }

    /// Whether a path relative to the root is excluded. Matching is on the
    /// raw bytes, so a name that is not UTF-8 is matched as it is: `*` spans
    /// any bytes but `/`, and `?` matches one byte (globset works on bytes, so
    /// a character that takes several bytes in UTF-8 needs `*`).
    pub fn matches(&self, rel: &[u8]) -> bool {
        !self.set.is_empty() && self.set.is_match_candidate(&globset::Candidate::from_bytes(rel))
    }
}

/// The text of an error, without the case name Display adds and without a
/// leading `path: ` the host already put there.
pub fn reason<'a>(err: &'a PluginError, path: &str) -> &'a str {
    let text = err.message();
    text.strip_prefix(path).and_then(|t| t.strip_prefix(": ")).unwrap_or(text)
}

/// A path for people: lossy UTF-8.
pub fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// `parent/name`, or `name` at the root.
fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    if !parent.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// A name the walk can put into a path: the host never lists `.`, `..`, an
/// empty name or one with a `/`, but a path built from one would be wrong.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

/// One directory being listed on the current path.
struct Level<L> {
    /// Its path relative to the root ("" for the root).
    rel: Vec<u8>,
    listing: L,
}

/// The walk in progress.
pub struct Walker<T: Tree> {
    tree: T,
    /// Absolute, without a trailing `/` unless it is `/` itself.
    root: Vec<u8>,
    excludes: Excludes,
    /// The root's metadata until the root was yielded.
    root_meta: Option<Metadata>,
    stack: Vec<Level<T::Listing>>,
}

impl<T: Tree> Walker<T> {
    /// Start at `root`, an absolute path; it must be a directory (a symlink to
    /// one is not followed). Errors from the tree (a missing root) pass through.
    pub fn new(tree: T, root: &[u8], excludes: Excludes) -> Result<Self, PluginError> {
        let root = normalize_root(root);
        let meta = tree.lstat(&root)?;
        if meta.kind != EntryKind::Directory {
            let shown = display(&root);
            let hint = match &meta.symlink_target {
                Some(target) => format!(" (it is a symlink to {}; give that path instead)", display(target)),
                None => String::new(),
            };
            return Err(PluginError::Config(format!("path: {shown} is not a directory{hint}")));
        }
        Ok(Walker { tree, root, excludes, root_meta: Some(meta), stack: Vec::new() })
    }

    /// The absolute path of `rel`.
    fn absolute(&self, rel: &[u8]) -> Vec<u8> {
        absolute(&self.root, rel)
    }

    /// Enter a directory that was just yielded: list it, or warn and yield
    /// no children.
    fn descend(&mut self, rel: Vec<u8>, log: &mut dyn Log) {
        let abs = self.absolute(&rel);
        match self.tree.list_dir(&abs) {
            Ok(listing) => self.stack.push(Level { rel, listing }),
            Err(e) => {
                let shown = display(&abs);
                log.warn(format!("cannot list {shown}: {}; its contents are not backed up", reason(&e, &shown)));
            }
        }
    }

    /// Up to `max` further entries; empty once the walk is over. A `max` of
    /// 0 is taken as 1, since an empty answer means the end.
    pub fn next_batch(&mut self, max: usize, log: &mut dyn Log) -> Result<Vec<Entry>, PluginError> {
        let max = max.max(1);
        let mut out = Vec::with_capacity(max.min(1024));
        if let Some(meta) = self.root_meta.take() {
            out.push(Entry { path: Vec::new(), meta, attributes: Vec::new() });
            self.descend(Vec::new(), log);
        }
        while out.len() < max {
            let Some(level) = self.stack.last_mut() else { break };
            let (name, meta) = match level.listing.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Ok(child)) => child,
                Some(Err(e)) => {
                    // The listing broke off: what was yielded stays, the rest
                    // of this directory is skipped.
                    let shown = display(&absolute(&self.root, &level.rel));
                    log.warn(format!(
                        "cannot list {shown}: {}; the rest of its contents are not backed up",
                        reason(&e, &shown)
                    ));
                    self.stack.pop();
                    continue;
                }
            };
            let rel = join(&level.rel, &name);
            if !valid_name(&name) {
                log.warn(format!("skipping {}: the host listed an invalid name", display(&self.absolute(&rel))));
                continue;
            }
            // An excluded entry is not looked at at all, not even to warn.
            if self.excludes.matches(&rel) {
                log.debug(format!("excluded {}", display(&rel)));
                continue;
            }
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    let shown = display(&self.absolute(&rel));
                    log.warn(format!("cannot read {shown}: {}", reason(&e, &shown)));
                    continue;
                }
            };
            match meta.kind {
                EntryKind::Socket => {
                    log.debug(format!("skipping socket {}", display(&self.absolute(&rel))));
                }
                EntryKind::Directory => {
                    out.push(Entry { path: rel.clone(), meta, attributes: Vec::new() });
                    self.descend(rel, log);
                }
                _ => out.push(Entry { path: rel, meta, attributes: Vec::new() }),
            }
        }
        Ok(out)
    }

    /// The content of a regular file, by its path relative to the root.
    pub fn open(&self, rel: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.tree.open(&self.inside(rel)?)
    }

    /// [`Walker::open`], as the host reads it.
    pub fn open_content(&self, rel: &[u8]) -> Result<Content, PluginError> {
        self.tree.open_content(&self.inside(rel)?)
    }

    /// The absolute path of `rel`, a path inside the tree.
    fn inside(&self, rel: &[u8]) -> Result<Vec<u8>, PluginError> {
        if rel.is_empty() || !rel.split(|&b| b == b'/').all(valid_name) {
            return Err(PluginError::NotFound(format!("{:?} is not a path inside the tree", display(rel))));
        }
        Ok(self.absolute(rel))
    }
}

/// The absolute path of `rel` under `root`.
fn absolute(root: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(root.len() + 1 + rel.len());
    p.extend_from_slice(root);
    if !rel.is_empty() {
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(rel);
    }
    p
}

/// Drop trailing slashes, keeping `/` itself.
fn normalize_root(root: &[u8]) -> Vec<u8> {
    let mut end = root.len();
    while end > 1 && root[end - 1] == b'/' {
        end -= 1;
    }
    root[..end].to_vec()
}
