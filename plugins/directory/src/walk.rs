//! The walk: depth first, each directory right before its children, children
//! in bytewise order of name (duplicity's index order). Memory holds one open
//! listing per level of the current path, never the whole tree.

use plugin_sdk::{Entry, EntryKind, Metadata, PluginError};

/// A child of a directory: its name and its metadata (or why not).
pub type Child = (Vec<u8>, Result<Metadata, PluginError>);

/// What the walk needs from a file system. Listings come sorted bytewise.
pub trait Tree {
    /// A directory's children, sorted bytewise by name.
    type Listing: Iterator<Item = Result<Child, PluginError>>;
    /// Metadata without following a final symlink.
    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError>;
    /// The children of a directory.
    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError>;
    /// A regular file's content.
    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError>;
}

/// Compiled exclude patterns.
pub struct Excludes {
    set: globset::GlobSet,
}

impl Excludes {
    /// Compile `patterns`; a bad one is a config error naming its index.
    pub fn new(patterns: &[String]) -> Result<Excludes, PluginError> {
        let mut builder = globset::GlobSetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            let glob = globset::GlobBuilder::new(p.trim_start_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| PluginError::Config(format!("exclude[{i}]: {e}")))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| PluginError::Config(format!("exclude: {e}")))?;
        Ok(Excludes { set })
    }

    /// Whether a relative path is excluded. Names that are not UTF-8 are
    /// matched in their lossy form.
    pub fn matches(&self, rel: &[u8]) -> bool {
        !self.set.is_empty() && self.set.is_match(String::from_utf8_lossy(rel).as_ref())
    }
}

struct Level<L> {
    /// Relative path of the directory being listed ("" for the root).
    rel: Vec<u8>,
    listing: L,
}

/// The walk in progress.
pub struct Walker<T: Tree> {
    tree: T,
    root: Vec<u8>,
    excludes: Excludes,
    root_meta: Option<Metadata>,
    stack: Vec<Level<T::Listing>>,
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

impl<T: Tree> Walker<T> {
    /// Start at `root` (an absolute path); it must be a directory.
    pub fn new(tree: T, root: Vec<u8>, excludes: Excludes) -> Result<Self, PluginError> {
        let meta = tree.lstat(&root)?;
        if meta.kind != EntryKind::Directory {
            return Err(PluginError::Config(format!("path: {} is not a directory", display(&root))));
        }
        Ok(Walker { tree, root, excludes, root_meta: Some(meta), stack: Vec::new() })
    }

    fn absolute(&self, rel: &[u8]) -> Vec<u8> {
        let mut p = self.root.clone();
        if !rel.is_empty() {
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(rel);
        }
        p
    }

    /// Enter a directory: list it, or warn and yield no children.
    fn descend(&mut self, rel: Vec<u8>, warn: &mut dyn FnMut(String)) {
        match self.tree.list_dir(&self.absolute(&rel)) {
            Ok(listing) => self.stack.push(Level { rel, listing }),
            Err(e) => warn(format!("cannot list {}: {e}", display(&self.absolute(&rel)))),
        }
    }

    /// Up to `max` further entries; empty at the end.
    pub fn next_batch(&mut self, max: usize, warn: &mut dyn FnMut(String)) -> Result<Vec<Entry>, PluginError> {
        let mut out = Vec::new();
        if let Some(meta) = self.root_meta.take() {
            out.push(Entry { path: Vec::new(), meta, attributes: Vec::new() });
            self.descend(Vec::new(), warn);
        }
        while out.len() < max.max(1) {
            let Some(level) = self.stack.last_mut() else { break };
            let Some(next) = level.listing.next() else {
                self.stack.pop();
                continue;
            };
            let parent = level.rel.clone();
            let (name, meta) = match next {
                Ok(child) => child,
                Err(e) => {
                    warn(format!("cannot list {}: {e}", display(&self.absolute(&parent))));
                    self.stack.pop();
                    continue;
                }
            };
            let mut rel = parent;
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    warn(format!("cannot read {}: {e}", display(&self.absolute(&rel))));
                    continue;
                }
            };
            if meta.kind == EntryKind::Socket || self.excludes.matches(&rel) {
                continue;
            }
            let is_dir = meta.kind == EntryKind::Directory;
            out.push(Entry { path: rel.clone(), meta, attributes: Vec::new() });
            if is_dir {
                self.descend(rel, warn);
            }
        }
        Ok(out)
    }

    /// The content of a regular file under the root.
    pub fn open(&self, rel: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.tree.open(&self.absolute(rel))
    }
}

#[cfg(test)]
mod tests;
