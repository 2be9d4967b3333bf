//! A recursive snapshot read as one tree: each child dataset's snapshot
//! grafted where the child is mounted.
//!
//! ZFS shows a child dataset in its parent's snapshot only as the empty
//! directory it is mounted on; its files are in its own
//! `<its mountpoint>/.zfs/snapshot/<name>`. [`plan`] works out where each
//! child goes (relative to the parent's mountpoint, so `local_path` and the
//! NAS's paths map alike) and [`GraftTree`] sends every path under a graft
//! point to that child's snapshot, the deepest graft winning (grandchildren).

use orchestrator_truenas::{ChildDataset, Mount, snapshot_path};
use plugin_sdk::{Content, Metadata, PluginError};
use plugin_tree_walk::{Child, Tree};

/// One child dataset's snapshot and where it appears in the parent's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graft {
    /// `tank/media/photos`.
    pub dataset: String,
    /// Its mountpoint on the NAS.
    pub mountpoint: String,
    /// Where that mountpoint is read here (under `local_path`, or the NAS path).
    pub base: String,
    /// The graft point: the mountpoint relative to the parent's, no `/` at
    /// either end (`photos`, `photos/raw`).
    pub at: String,
    /// The child's snapshot files: `<base>/.zfs/snapshot/<name>`.
    pub root: String,
}

/// Where each child of `dataset` (mounted at `mountpoint` on the NAS, read
/// at `base`) is grafted for snapshot `name`, deepest first; and, for each
/// child that cannot be, a warning naming it and why.
pub fn plan(
    dataset: &str,
    mountpoint: &str,
    base: &str,
    name: &str,
    children: &[ChildDataset],
) -> (Vec<Graft>, Vec<String>) {
    let parent = mountpoint.trim_end_matches('/');
    let mut grafts = Vec::new();
    let mut warnings = Vec::new();
    for child in children {
        let not_backed_up = |why: &str| {
            format!(
                "child dataset {} is not backed up: {why}. Mount it under {mountpoint} (the mountpoint of {dataset}), \
                 or back it up as a source of its own",
                child.name
            )
        };
        let child_mountpoint = match &child.mount {
            Mount::At(path) => path,
            Mount::NotMounted(why) => {
                warnings.push(format!("child dataset {} is not backed up: {why}", child.name));
                continue;
            }
        };
        let Some(at) = relative(parent, child_mountpoint) else {
            warnings.push(not_backed_up(&format!("it is mounted at {child_mountpoint}, not inside {mountpoint}")));
            continue;
        };
        let child_base = format!("{}/{at}", base.trim_end_matches('/'));
        grafts.push(Graft {
            dataset: child.name.clone(),
            mountpoint: child_mountpoint.clone(),
            root: snapshot_path(&child_base, name),
            base: child_base,
            at,
        });
    }
    grafts.sort_by(|a, b| depth(&b.at).cmp(&depth(&a.at)).then_with(|| a.at.cmp(&b.at)));
    (grafts, warnings)
}

fn depth(at: &str) -> usize {
    at.split('/').count()
}

/// `path` relative to `parent` (both absolute, `parent` without a trailing
/// `/`), normalised; `None` when it is not strictly inside.
fn relative(parent: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix(parent)?;
    if !parent.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// `tree` with the `grafts` in place under `root` (the parent's snapshot).
pub struct GraftTree<T> {
    tree: T,
    root: Vec<u8>,
    /// Deepest first, as [`plan`] orders them.
    grafts: Vec<Graft>,
}

impl<T: Tree> GraftTree<T> {
    pub fn new(tree: T, root: &str, grafts: Vec<Graft>) -> GraftTree<T> {
        let trimmed = root.trim_end_matches('/');
        let root = if trimmed.is_empty() { b"/".to_vec() } else { trimmed.as_bytes().to_vec() };
        GraftTree { tree, root, grafts }
    }

    pub fn grafts(&self) -> &[Graft] {
        &self.grafts
    }

    pub fn inner(&self) -> &T {
        &self.tree
    }

    /// `path` relative to the root, if it is under it.
    fn rel<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        let rest = path.strip_prefix(self.root.as_slice())?;
        if rest.is_empty() {
            return Some(rest);
        }
        if self.root.ends_with(b"/") {
            return Some(rest);
        }
        rest.strip_prefix(b"/")
    }

    /// Where `path` (under the parent's snapshot) really is.
    pub fn map(&self, path: &[u8]) -> Vec<u8> {
        let Some(rel) = self.rel(path) else { return path.to_vec() };
        for graft in &self.grafts {
            let at = graft.at.as_bytes();
            if let Some(rest) = rel.strip_prefix(at).filter(|r| r.is_empty() || r.starts_with(b"/")) {
                let mut mapped = graft.root.as_bytes().to_vec();
                mapped.extend_from_slice(rest);
                return mapped;
            }
        }
        path.to_vec()
    }

    /// Drops the grafts whose graft point is not a directory where it
    /// should be (shallowest first, so a grandchild under a dropped child
    /// goes too): the walk would never reach them. Returns each with the
    /// path that was looked at.
    pub fn drop_uncovered(&mut self) -> Vec<(Graft, String)> {
        let mut dropped = Vec::new();
        let mut i = self.grafts.len();
        while i > 0 {
            i -= 1;
            let covered = self.covered(&self.grafts[i]);
            let is_dir = self.tree.lstat(&covered).is_ok_and(|m| m.kind == plugin_sdk::EntryKind::Directory);
            if !is_dir {
                let graft = self.grafts.remove(i);
                dropped.push((graft, String::from_utf8_lossy(&covered).into_owned()));
            }
        }
        dropped
    }

    /// Where the directory a graft covers is, in the tree that holds it (the
    /// parent's snapshot, or a shallower child's): `map` of its parent
    /// directory, then its name.
    pub fn covered(&self, graft: &Graft) -> Vec<u8> {
        let (above, name) = graft.at.rsplit_once('/').map_or(("", graft.at.as_str()), |(a, n)| (a, n));
        let mut dir = self.root.clone();
        if !above.is_empty() {
            dir.push(b'/');
            dir.extend_from_slice(above.as_bytes());
        }
        let mut path = self.map(&dir);
        path.push(b'/');
        path.extend_from_slice(name.as_bytes());
        path
    }
}

/// A listing whose graft points carry their child snapshot's metadata.
pub struct GraftListing<L> {
    listing: L,
    /// Names of graft points in this directory, with the child roots' metadata.
    points: Vec<(Vec<u8>, Result<Metadata, PluginError>)>,
}

impl<L: Iterator<Item = Result<Child, PluginError>>> Iterator for GraftListing<L> {
    type Item = Result<Child, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.listing.next()?;
        Some(item.map(|(name, meta)| match self.points.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                let (_, root) = self.points.swap_remove(i);
                (name, root)
            }
            None => (name, meta),
        }))
    }
}

impl<T: Tree> Tree for GraftTree<T> {
    type Listing = GraftListing<T::Listing>;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        self.tree.lstat(&self.map(path))
    }

    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
        let listing = self.tree.list_dir(&self.map(path))?;
        // The graft points right under `path`: their metadata is the child
        // snapshot's root, not the empty directory ZFS shows in the parent.
        let mut points = Vec::new();
        if let Some(rel) = self.rel(path) {
            for graft in &self.grafts {
                let (above, name) = graft.at.rsplit_once('/').unwrap_or(("", graft.at.as_str()));
                if above.as_bytes() == rel {
                    points.push((name.as_bytes().to_vec(), self.tree.lstat(graft.root.as_bytes())));
                }
            }
        }
        Ok(GraftListing { listing, points })
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        self.tree.open(&self.map(path))
    }

    fn open_content(&self, path: &[u8]) -> Result<Content, PluginError> {
        self.tree.open_content(&self.map(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::EntryKind;
    use plugin_tree_walk::{Excludes, Log, Walker};
    use std::collections::BTreeMap;
    use std::io::Read;

    fn mounted(name: &str, at: &str) -> ChildDataset {
        ChildDataset { name: name.into(), mount: Mount::At(at.into()) }
    }

    #[test]
    fn children_are_grafted_relative_to_the_parent_deepest_first() {
        let children = [
            mounted("tank/m/a", "/mnt/tank/m/a"),
            mounted("tank/m/a/b", "/mnt/tank/m/a/deep/b"),
            mounted("tank/m/c", "/mnt/tank/mx"),
            mounted("tank/m/d", "/srv/d"),
            mounted("tank/m/e", "/mnt/tank/m"),
            ChildDataset { name: "tank/m/f".into(), mount: Mount::NotMounted("its mountpoint is legacy".into()) },
        ];
        let (grafts, warnings) = plan("tank/m", "/mnt/tank/m", "/data/m/", "snap", &children);
        let at: Vec<(&str, &str)> = grafts.iter().map(|g| (g.at.as_str(), g.root.as_str())).collect();
        assert_eq!(
            at,
            [("a/deep/b", "/data/m/a/deep/b/.zfs/snapshot/snap"), ("a", "/data/m/a/.zfs/snapshot/snap")],
            "local_path stands for the parent's mountpoint, children under it alike"
        );
        assert_eq!(grafts[1].mountpoint, "/mnt/tank/m/a");
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].contains("tank/m/c") && warnings[0].contains("not inside /mnt/tank/m"), "{warnings:?}");
        assert!(warnings[1].contains("tank/m/d") && warnings[1].contains("/srv/d"), "{warnings:?}");
        assert!(warnings[2].contains("tank/m/e"), "same mountpoint as the parent: {warnings:?}");
        assert!(warnings[3].contains("tank/m/f") && warnings[3].contains("legacy"), "{warnings:?}");
        assert_eq!(relative("", "/x/y"), Some("x/y".into()));
        assert_eq!(relative("/a", "/a/../b"), None);
    }

    #[test]
    fn paths_map_to_the_deepest_graft() {
        let children = [mounted("t/d/a", "/mnt/t/d/a"), mounted("t/d/a/b", "/mnt/t/d/a/b")];
        let (grafts, _) = plan("t/d", "/mnt/t/d", "/mnt/t/d", "s", &children);
        let tree = GraftTree::new(Memory::default(), "/mnt/t/d/.zfs/snapshot/s", grafts);
        let map = |p: &str| String::from_utf8(tree.map(p.as_bytes())).unwrap();
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s"), "/mnt/t/d/.zfs/snapshot/s");
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s/x/a"), "/mnt/t/d/.zfs/snapshot/s/x/a");
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s/a"), "/mnt/t/d/a/.zfs/snapshot/s");
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s/ab"), "/mnt/t/d/.zfs/snapshot/s/ab");
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s/a/f"), "/mnt/t/d/a/.zfs/snapshot/s/f");
        assert_eq!(map("/mnt/t/d/.zfs/snapshot/s/a/b/g"), "/mnt/t/d/a/b/.zfs/snapshot/s/g");
        assert_eq!(map("/elsewhere"), "/elsewhere");
        let covered = |i: usize| String::from_utf8(tree.covered(&tree.grafts()[i])).unwrap();
        assert_eq!(covered(0), "/mnt/t/d/a/.zfs/snapshot/s/b", "a grandchild's placeholder is in the child");
        assert_eq!(covered(1), "/mnt/t/d/.zfs/snapshot/s/a");
    }

    /// An in-memory tree: directories and files by absolute path.
    #[derive(Default)]
    struct Memory {
        nodes: BTreeMap<String, Metadata>,
    }

    impl Memory {
        fn add(&mut self, path: &str, kind: EntryKind, mode: u32) {
            let meta = Metadata {
                kind,
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                mtime_nsec: 0,
                size: 0,
                symlink_target: None,
                device: None,
            };
            self.nodes.insert(path.to_owned(), meta);
        }
    }

    impl Tree for Memory {
        type Listing = std::vec::IntoIter<Result<Child, PluginError>>;

        fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
            let path = std::str::from_utf8(path).unwrap();
            self.nodes.get(path).cloned().ok_or_else(|| PluginError::NotFound(format!("{path}: no such file")))
        }

        fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
            let prefix = format!("{}/", std::str::from_utf8(path).unwrap());
            let children: Vec<Result<Child, PluginError>> = self
                .nodes
                .iter()
                .filter_map(|(p, m)| p.strip_prefix(&prefix).filter(|n| !n.contains('/')).map(|n| (n, m)))
                .map(|(n, m)| Ok((n.as_bytes().to_vec(), Ok(m.clone()))))
                .collect();
            Ok(children.into_iter())
        }

        fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
            Ok(Box::new(std::io::Cursor::new(path.to_vec())))
        }
    }

    #[test]
    fn a_graft_point_missing_from_the_snapshot_is_dropped_with_what_is_under_it() {
        let mut nas = Memory::default();
        nas.add("/m/.zfs/snapshot/s", EntryKind::Directory, 0o755);
        nas.add("/m/.zfs/snapshot/s/kept", EntryKind::Directory, 0o755);
        for root in ["/m/kept", "/m/gone", "/m/gone/x"] {
            nas.add(&format!("{root}/.zfs/snapshot/s"), EntryKind::Directory, 0o755);
        }
        nas.add("/m/gone/.zfs/snapshot/s/x", EntryKind::Directory, 0o755);
        let children = [mounted("t/kept", "/m/kept"), mounted("t/gone", "/m/gone"), mounted("t/gone/x", "/m/gone/x")];
        let (grafts, _) = plan("t", "/m", "/m", "s", &children);
        let mut tree = GraftTree::new(nas, "/m/.zfs/snapshot/s", grafts);
        let dropped: Vec<(String, String)> = tree.drop_uncovered().into_iter().map(|(g, p)| (g.dataset, p)).collect();
        assert_eq!(
            dropped,
            [
                ("t/gone".into(), "/m/.zfs/snapshot/s/gone".into()),
                ("t/gone/x".into(), "/m/.zfs/snapshot/s/gone/x".into())
            ]
        );
        assert_eq!(tree.grafts().len(), 1);
    }

    struct NoLog;

    impl Log for NoLog {
        fn warn(&mut self, message: String) {
            panic!("unexpected warning: {message}");
        }
        fn debug(&mut self, _: String) {}
    }

    #[test]
    fn the_walk_sees_children_in_place_with_their_roots_metadata() {
        use EntryKind::{Directory, File};
        let mut nas = Memory::default();
        let snap = "/mnt/t/d/.zfs/snapshot/s";
        nas.add(snap, Directory, 0o755);
        nas.add(&format!("{snap}/a"), Directory, 0o700); // the empty placeholder
        nas.add(&format!("{snap}/z.txt"), File, 0o644);
        nas.add("/mnt/t/d/a/.zfs/snapshot/s", Directory, 0o750);
        nas.add("/mnt/t/d/a/.zfs/snapshot/s/f.txt", File, 0o600);
        nas.add("/mnt/t/d/a/.zfs/snapshot/s/b", Directory, 0o700);
        nas.add("/mnt/t/d/a/b/.zfs/snapshot/s", Directory, 0o711);
        nas.add("/mnt/t/d/a/b/.zfs/snapshot/s/g.txt", File, 0o640);
        let children = [mounted("t/d/a", "/mnt/t/d/a"), mounted("t/d/a/b", "/mnt/t/d/a/b")];
        let (grafts, _) = plan("t/d", "/mnt/t/d", "/mnt/t/d", "s", &children);
        let tree = GraftTree::new(nas, snap, grafts);
        let mut walker = Walker::new(tree, snap.as_bytes(), Excludes::new(&[]).unwrap()).unwrap();
        let entries = walker.next_batch(100, &mut NoLog).unwrap();
        let seen: Vec<(String, u32)> =
            entries.iter().map(|e| (String::from_utf8(e.path.clone()).unwrap(), e.meta.mode)).collect();
        assert_eq!(
            seen,
            [
                ("".into(), 0o755),
                ("a".into(), 0o750),
                ("a/b".into(), 0o711),
                ("a/b/g.txt".into(), 0o640),
                ("a/f.txt".into(), 0o600),
                ("z.txt".into(), 0o644),
            ]
        );
        assert!(walker.next_batch(100, &mut NoLog).unwrap().is_empty());
        let mut content = String::new();
        walker.open(b"a/b/g.txt").unwrap().read_to_string(&mut content).unwrap();
        assert_eq!(content, "/mnt/t/d/a/b/.zfs/snapshot/s/g.txt");
    }
}
