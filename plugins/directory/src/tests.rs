//! Native tests: the walk over real trees (`std::fs`) and over an in-memory
//! tree that can fail where the tests say.

use super::*;
use crate::walk::{Child, display};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::rc::Rc;

// ---------------------------------------------------------------------------
// Test doubles

/// What the walk reported.
#[derive(Default, Debug)]
struct Collect {
    warnings: Vec<String>,
    debug: Vec<String>,
}

impl Log for Collect {
    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }
    fn debug(&mut self, message: String) {
        self.debug.push(message);
    }
}

/// An I/O error worded as the host words it: the path first.
fn io_error(path: &Path, e: std::io::Error) -> PluginError {
    let p = path.to_string_lossy();
    match e.kind() {
        std::io::ErrorKind::NotFound => PluginError::NotFound(format!("{p}: no such file or directory")),
        _ => PluginError::Io(format!("{p}: {e}")),
    }
}

fn os(path: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(path))
}

/// `std::fs` as a [`Tree`], with lstat semantics and listings sorted as the host sorts them.
struct StdTree;

fn major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

fn minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

/// glibc's `makedev`, to check the decoding above.
fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
}

fn std_lstat(path: &Path) -> Result<Metadata, PluginError> {
    let m = std::fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Directory
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() {
        EntryKind::CharDevice
    } else if ft.is_block_device() {
        EntryKind::BlockDevice
    } else {
        EntryKind::File
    };
    let symlink_target = if ft.is_symlink() {
        Some(std::fs::read_link(path).map_err(|e| io_error(path, e))?.as_os_str().as_bytes().to_vec())
    } else {
        None
    };
    let device = (ft.is_char_device() || ft.is_block_device()).then(|| (major(m.rdev()), minor(m.rdev())));
    Ok(Metadata {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec() as u32,
        size: if kind == EntryKind::File { m.len() } else { 0 },
        symlink_target,
        device,
    })
}

impl Tree for StdTree {
    type Listing = std::vec::IntoIter<Result<Child, PluginError>>;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        std_lstat(os(path))
    }

    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
        let dir = os(path);
        let mut children = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let e = e.map_err(|e| io_error(dir, e))?;
            children.push((e.file_name().as_bytes().to_vec(), std_lstat(&e.path())));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(children.into_iter().map(Ok).collect::<Vec<_>>().into_iter())
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        let f = std::fs::File::open(os(path)).map_err(|e| io_error(os(path), e))?;
        Ok(Box::new(f))
    }
}

fn meta(kind: EntryKind) -> Metadata {
    Metadata {
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        size: 0,
        symlink_target: None,
        device: None,
    }
}

/// One node of a [`MemTree`].
struct Node {
    meta: Result<Metadata, PluginError>,
    /// `list_dir` fails with this.
    list_error: Option<PluginError>,
    /// The listing yields this error after this many children.
    break_after: Option<usize>,
}

/// An in-memory tree under `/m`, with failures where a test puts them and a
/// count of the listings alive at once.
#[derive(Default)]
struct MemTree {
    nodes: BTreeMap<Vec<u8>, Node>,
    live: Rc<Cell<usize>>,
    peak: Rc<Cell<usize>>,
    lists: Rc<Cell<usize>>,
}

impl MemTree {
    fn new() -> MemTree {
        let mut t = MemTree::default();
        t.add(b"/m", meta(EntryKind::Directory));
        t
    }
    fn add(&mut self, path: &[u8], meta: Metadata) -> &mut Node {
        self.nodes.entry(path.to_vec()).or_insert(Node { meta: Ok(meta), list_error: None, break_after: None })
    }
    fn dir(&mut self, path: &[u8]) -> &mut Node {
        self.add(path, meta(EntryKind::Directory))
    }
    fn file(&mut self, path: &[u8]) -> &mut Node {
        self.add(path, meta(EntryKind::File))
    }
}

struct MemListing {
    children: std::vec::IntoIter<Result<Child, PluginError>>,
    live: Rc<Cell<usize>>,
}

impl Iterator for MemListing {
    type Item = Result<Child, PluginError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.children.next()
    }
}

impl Drop for MemListing {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

/// The walk only ever asks for absolute paths without empty components.
fn assert_clean(path: &[u8]) {
    assert!(path.starts_with(b"/"), "{}", display(path));
    assert!(!path.windows(2).any(|w| w == b"//"), "{}", display(path));
    assert!(path == b"/" || !path.ends_with(b"/"), "{}", display(path));
}

impl Tree for MemTree {
    type Listing = MemListing;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        assert_clean(path);
        match self.nodes.get(path) {
            Some(n) => n.meta.clone(),
            None => Err(PluginError::NotFound(format!("{}: no such file or directory", display(path)))),
        }
    }

    fn list_dir(&self, path: &[u8]) -> Result<MemListing, PluginError> {
        assert_clean(path);
        let node = self.nodes.get(path).ok_or_else(|| PluginError::NotFound(display(path)))?;
        if let Some(e) = &node.list_error {
            return Err(e.clone());
        }
        let mut prefix = path.to_vec();
        if !prefix.ends_with(b"/") {
            prefix.push(b'/');
        }
        // Deliberately not relying on the map's order: sort as the host does.
        let mut children: Vec<Child> = self
            .nodes
            .iter()
            .filter_map(|(p, n)| {
                let name = p.strip_prefix(prefix.as_slice())?;
                (!name.is_empty() && !name.contains(&b'/')).then(|| (name.to_vec(), n.meta.clone()))
            })
            .collect();
        children.reverse();
        children.sort_by(|a, b| a.0.cmp(&b.0));
        let mut items: Vec<Result<Child, PluginError>> = children.into_iter().map(Ok).collect();
        if let Some(n) = node.break_after {
            items.truncate(n);
            items.push(Err(PluginError::Io(format!("{}: device went away", display(path)))));
        }
        self.live.set(self.live.get() + 1);
        self.peak.set(self.peak.get().max(self.live.get()));
        self.lists.set(self.lists.get() + 1);
        Ok(MemListing { children: items.into_iter(), live: self.live.clone() })
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        assert_clean(path);
        match self.nodes.get(path) {
            Some(_) => Ok(Box::new(std::io::Cursor::new(path.to_vec()))),
            None => Err(PluginError::NotFound(display(path))),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn config(path: &[u8], exclude: &[&str]) -> Config {
    Config { path: display(path), exclude: exclude.iter().map(|s| s.to_string()).collect() }
}

/// Every entry of a session, asking for `batch` at a time.
fn drain<T: Tree + 'static>(s: &mut DirSession<T, Collect>, batch: usize) -> Vec<Entry> {
    let mut all = Vec::new();
    loop {
        let b = s.next(batch).unwrap();
        assert!(b.len() <= batch.max(1), "more than asked for");
        if b.is_empty() {
            return all;
        }
        all.extend(b);
    }
}

fn walk_tree<T: Tree + 'static>(tree: T, root: &[u8], exclude: &[&str], batch: usize) -> (Vec<Entry>, Collect) {
    let mut s = DirSession::new(tree, &config(root, exclude), Collect::default()).unwrap();
    let entries = drain(&mut s, batch);
    // After the end, the end again.
    assert!(s.next(10).unwrap().is_empty());
    let DirSession { log, .. } = s;
    (entries, log)
}

fn walk_dir(root: &Path, exclude: &[&str], batch: usize) -> (Vec<Entry>, Collect) {
    walk_tree(StdTree, root.as_os_str().as_bytes(), exclude, batch)
}

fn paths(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| display(&e.path)).collect()
}

fn find<'a>(entries: &'a [Entry], path: &[u8]) -> &'a Entry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("{} not yielded", display(path)))
}

/// Index order: component tuples compared bytewise.
fn assert_index_order(entries: &[Entry]) {
    let index = |e: &Entry| -> Vec<Vec<u8>> {
        if e.path.is_empty() { Vec::new() } else { e.path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect() }
    };
    for w in entries.windows(2) {
        assert!(index(&w[0]) < index(&w[1]), "{:?} before {:?}", display(&w[0].path), display(&w[1].path));
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(true)
}

// ---------------------------------------------------------------------------
// Order and batching

#[test]
fn order_is_duplicity_index_order_not_string_order() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("sub/deeper")).unwrap();
    std::fs::create_dir(r.join("sub-x")).unwrap();
    std::fs::create_dir(r.join("empty")).unwrap();
    std::fs::write(r.join("sub/deeper/d.txt"), "d").unwrap();
    std::fs::write(r.join("sub/a.txt"), "a").unwrap();
    std::fs::write(r.join("sub-x/e"), "").unwrap();
    std::fs::write(r.join("B"), "").unwrap();
    std::fs::write(r.join("a"), "").unwrap();
    let (entries, log) = walk_dir(r, &[], 1000);
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
    assert_eq!(
        paths(&entries),
        ["", "B", "a", "empty", "sub", "sub/a.txt", "sub/deeper", "sub/deeper/d.txt", "sub-x", "sub-x/e"]
    );
    assert_index_order(&entries);
    // The root comes first, with its own metadata.
    assert_eq!(entries[0].meta, std_lstat(r).unwrap());
    assert_eq!(find(&entries, b"sub/a.txt").meta.size, 1);
    assert_eq!(find(&entries, b"sub").meta.size, 0);
    assert!(entries.iter().all(|e| e.attributes.is_empty()));
}

#[test]
fn batch_size_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    for d in ["a/b/c", "a/b2", "z", "m/n"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for f in ["a/b/c/1", "a/b/c/2", "a/b/x", "a/y", "m/n/o", "top"] {
        std::fs::write(r.join(f), f).unwrap();
    }
    let (all, _) = walk_dir(r, &[], 1000);
    assert_eq!(all.len(), 14);
    for batch in [1, 2, 3, 7] {
        let (b, _) = walk_dir(r, &[], batch);
        assert_eq!(b, all, "batch {batch}");
    }
    // 0 is taken as 1: an empty answer would mean the end.
    let (zero, _) = walk_dir(r, &[], 0);
    assert_eq!(zero, all);
}

#[test]
fn a_trailing_slash_on_the_root_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), "x").unwrap();
    let mut root = tmp.path().as_os_str().as_bytes().to_vec();
    let (plain, _) = walk_tree(StdTree, &root, &[], 10);
    root.extend_from_slice(b"//");
    let (slashed, _) = walk_tree(StdTree, &root, &[], 10);
    assert_eq!(plain, slashed);
    let mut s = DirSession::new(StdTree, &config(&root, &[]), Collect::default()).unwrap();
    drain(&mut s, 10);
    let mut content = String::new();
    s.open(b"f").unwrap().read_to_string(&mut content).unwrap();
    assert_eq!(content, "x");
}

#[test]
fn only_the_listings_along_the_current_path_are_open() {
    // A tree 6 levels deep with many siblings at every level.
    let mut t = MemTree::new();
    let mut dir = b"/m".to_vec();
    for depth in 0..6 {
        for i in 0..20 {
            t.file(format!("{}/f{i:02}", display(&dir)).as_bytes());
        }
        dir.extend_from_slice(format!("/d{depth}").as_bytes());
        t.dir(&dir);
    }
    let (peak, lists) = (t.peak.clone(), t.lists.clone());
    let (entries, _) = walk_tree(t, b"/m", &[], 5);
    assert_eq!(entries.len(), 1 + 6 * 20 + 6);
    assert_index_order(&entries);
    assert_eq!(lists.get(), 7, "each directory listed once");
    assert_eq!(peak.get(), 7, "root plus one listing per level");
}

#[test]
fn listings_are_sorted_bytewise_whatever_the_tree_order() {
    let mut t = MemTree::new();
    for name in ["b", "B", "a.b", "a", "a-b", "\u{e9}", "a/x", "a/X"] {
        t.file(format!("/m/{name}").as_bytes());
    }
    t.nodes.get_mut(&b"/m/a"[..]).unwrap().meta = Ok(meta(EntryKind::Directory));
    let (entries, _) = walk_tree(t, b"/m", &[], 3);
    assert_eq!(paths(&entries), ["", "B", "a", "a/X", "a/x", "a-b", "a.b", "b", "\u{e9}"]);
}

// ---------------------------------------------------------------------------
// Names and kinds

#[test]
fn odd_names_come_through_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let raw = OsStr::from_bytes(b"bad\xff\xfename");
    std::fs::create_dir(r.join(raw)).unwrap();
    std::fs::write(r.join(raw).join(OsStr::from_bytes(b"in\x80side")), "x").unwrap();
    std::fs::write(r.join("new\nline"), "x").unwrap();
    std::fs::write(r.join("with  spaces "), "x").unwrap();
    std::fs::write(r.join(" leading"), "x").unwrap();
    std::fs::write(r.join("tab\there"), "x").unwrap();
    std::fs::write(r.join("back\\slash"), "x").unwrap();
    std::fs::write(r.join("\u{65e5}\u{672c}"), "x").unwrap();
    let long = "l".repeat(200);
    std::fs::create_dir(r.join(&long)).unwrap();
    std::fs::write(r.join(&long).join(&long), "x").unwrap();
    let (entries, log) = walk_dir(r, &[], 4);
    assert!(log.warnings.is_empty());
    let got: Vec<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
    let long_file = format!("{long}/{long}");
    let want: Vec<&[u8]> = vec![
        b"",
        b" leading",
        b"back\\slash",
        b"bad\xff\xfename",
        b"bad\xff\xfename/in\x80side",
        long.as_bytes(),
        long_file.as_bytes(),
        b"new\nline",
        b"tab\there",
        b"with  spaces ",
        "\u{65e5}\u{672c}".as_bytes(),
    ];
    assert_eq!(got, want);
    assert_index_order(&entries);
}

#[test]
fn symlinks_are_yielded_and_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "x").unwrap();
    let r = tmp.path();
    std::fs::create_dir(r.join("real")).unwrap();
    std::fs::write(r.join("real/f"), "x").unwrap();
    symlink("/nonexistent/target", r.join("dangling")).unwrap();
    symlink(outside.path(), r.join("outside")).unwrap();
    symlink("real", r.join("inside")).unwrap();
    symlink("real/f", r.join("to-file")).unwrap();
    symlink(OsStr::from_bytes(b"odd\xfftarget"), r.join("odd")).unwrap();
    symlink("loop", r.join("loop")).unwrap();
    let (entries, log) = walk_dir(r, &[], 100);
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
    assert_eq!(paths(&entries), ["", "dangling", "inside", "loop", "odd", "outside", "real", "real/f", "to-file"]);
    let target = |p: &[u8]| find(&entries, p).meta.symlink_target.clone().unwrap();
    for p in [&b"dangling"[..], b"inside", b"loop", b"odd", b"outside", b"to-file"] {
        let e = find(&entries, p);
        assert_eq!(e.meta.kind, EntryKind::Symlink, "{}", display(p));
        assert_eq!(e.meta.size, 0);
    }
    assert_eq!(target(b"dangling"), b"/nonexistent/target");
    assert_eq!(target(b"outside"), outside.path().as_os_str().as_bytes());
    assert_eq!(target(b"odd"), b"odd\xfftarget");
    assert_eq!(target(b"inside"), b"real");
}

#[test]
fn fifos_and_devices_are_yielded_sockets_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    assert!(std::process::Command::new("mkfifo").arg(r.join("fifo")).status().unwrap().success());
    let _socket = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
    // A device node needs privileges; test it when mknod works here.
    let have_dev = std::process::Command::new("mknod")
        .args([r.join("null").as_os_str(), OsStr::new("c"), OsStr::new("1"), OsStr::new("3")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    std::fs::write(r.join("zz"), "x").unwrap();
    let (entries, log) = walk_dir(r, &[], 100);
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
    assert_eq!(find(&entries, b"fifo").meta.kind, EntryKind::Fifo);
    assert!(entries.iter().all(|e| e.path != b"sock"), "sockets are skipped");
    assert!(log.debug.iter().any(|m| m.contains("socket") && m.ends_with("/sock")), "{:?}", log.debug);
    if have_dev {
        let null = find(&entries, b"null");
        assert_eq!(null.meta.kind, EntryKind::CharDevice);
        assert_eq!(null.meta.device, Some((1, 3)));
        assert_eq!(paths(&entries), ["", "fifo", "null", "zz"]);
    } else {
        assert_eq!(paths(&entries), ["", "fifo", "zz"]);
    }
}

#[test]
fn devices_pass_through_with_their_numbers() {
    let mut t = MemTree::new();
    let mut c = meta(EntryKind::CharDevice);
    c.device = Some((4, 64));
    let mut b = meta(EntryKind::BlockDevice);
    b.device = Some((259, 1_048_575));
    t.add(b"/m/blk", b.clone());
    t.add(b"/m/chr", c.clone());
    t.add(b"/m/sock", meta(EntryKind::Socket));
    let (entries, _) = walk_tree(t, b"/m", &[], 10);
    assert_eq!(paths(&entries), ["", "blk", "chr"]);
    assert_eq!(entries[1].meta, b);
    assert_eq!(entries[2].meta, c);
    // And the test double decodes Linux's rdev the way the host does.
    let rdev = std_lstat(Path::new("/dev/null")).unwrap();
    assert_eq!((rdev.kind, rdev.device), (EntryKind::CharDevice, Some((1, 3))));
    for (maj, min) in [(0, 0), (8, 1), (259, 1_048_575), (0x1103, 0x1_0004), (u32::MAX, u32::MAX)] {
        assert_eq!((major(makedev(maj, min)), minor(makedev(maj, min))), (maj, min));
    }
}

// ---------------------------------------------------------------------------
// Excludes

#[test]
fn excludes_take_subtrees_and_star_stays_in_one_component() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("cache/deep")).unwrap();
    std::fs::create_dir_all(r.join("docs/sub/cache")).unwrap();
    std::fs::create_dir_all(r.join("x.tmp")).unwrap();
    for f in ["cache/deep/x", "docs/a.tmp", "docs/sub/b.tmp", "docs/sub/cache/c", "top.log", "docs/keep.log", "x.tmp/y"]
    {
        std::fs::write(r.join(f), "").unwrap();
    }
    std::fs::write(r.join("keep.tmp.not"), "").unwrap();
    let (entries, log) = walk_dir(r, &["cache", "**/*.tmp", "*.log"], 100);
    assert!(log.warnings.is_empty());
    // `cache` only at the top; `*.log` only at the top; `**/*.tmp` anywhere,
    // taking the directory `x.tmp` with its contents.
    assert_eq!(
        paths(&entries),
        ["", "docs", "docs/keep.log", "docs/sub", "docs/sub/cache", "docs/sub/cache/c", "keep.tmp.not"]
    );
    assert!(log.debug.iter().any(|m| m == "excluded cache"), "{:?}", log.debug);

    // `**` crosses components; a leading or trailing `/` means the same path.
    let (entries, _) = walk_dir(r, &["**/cache/", "/docs/*.tmp"], 100);
    assert_eq!(
        paths(&entries),
        ["", "docs", "docs/keep.log", "docs/sub", "docs/sub/b.tmp", "keep.tmp.not", "top.log", "x.tmp", "x.tmp/y"]
    );

    // A pattern for the contents keeps the directory itself.
    let (entries, _) = walk_dir(r, &["docs/**", "x.tmp", "c*", "k*", "t*"], 100);
    assert_eq!(paths(&entries), ["", "docs"]);
}

#[test]
fn excludes_match_names_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::write(r.join(OsStr::from_bytes(b"a\xffb")), "").unwrap();
    std::fs::write(r.join(OsStr::from_bytes(b"a\xffbc")), "").unwrap();
    std::fs::write(r.join("axb"), "").unwrap();
    std::fs::write(r.join("a\u{e9}b"), "").unwrap();
    std::fs::write(r.join("a\u{fffd}b"), "").unwrap();
    // `?` is one byte: the invalid byte and `x`, not the two bytes of `é`.
    let (entries, _) = walk_dir(r, &["a?b"], 100);
    assert_eq!(paths(&entries), ["", "a\u{e9}b", "a\u{fffd}b", "a\u{fffd}bc"]);
    // A literal replacement character is not an invalid byte.
    let (entries, _) = walk_dir(r, &["a\u{fffd}b", "a\u{e9}*"], 100);
    assert_eq!(paths(&entries), ["", "axb", "a\u{fffd}b", "a\u{fffd}bc"]);
    assert_eq!(entries[2].path, b"a\xffb");
    let (entries, _) = walk_dir(r, &["a*b"], 100);
    assert_eq!(paths(&entries), ["", "a\u{fffd}bc"]);
}

#[test]
fn an_excluded_entry_is_not_warned_about() {
    let mut t = MemTree::new();
    t.file(b"/m/broken").meta = Err(PluginError::Io("/m/broken: Input/output error".into()));
    t.dir(b"/m/locked").list_error = Some(PluginError::Io("/m/locked: Permission denied".into()));
    t.file(b"/m/ok");
    let (entries, log) = walk_tree(t, b"/m", &["broken", "locked"], 10);
    assert_eq!(paths(&entries), ["", "ok"]);
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
}

// ---------------------------------------------------------------------------
// Failures

#[test]
fn a_child_whose_metadata_cannot_be_read_is_warned_about_and_skipped() {
    let mut t = MemTree::new();
    t.dir(b"/m/d");
    t.file(b"/m/d/a");
    t.file(b"/m/d/b\xff").meta = Err(PluginError::Io("/m/d/b\u{fffd}: Input/output error (os error 5)".into()));
    t.file(b"/m/d/c");
    let (entries, log) = walk_tree(t, b"/m", &[], 1);
    assert_eq!(paths(&entries), ["", "d", "d/a", "d/c"]);
    assert_eq!(log.warnings, ["cannot read /m/d/b\u{fffd}: Input/output error (os error 5)"]);
}

#[test]
fn a_directory_that_cannot_be_listed_is_yielded_without_children() {
    let mut t = MemTree::new();
    t.dir(b"/m/a");
    t.dir(b"/m/a/locked").list_error = Some(PluginError::Io("/m/a/locked: Permission denied (os error 13)".into()));
    t.file(b"/m/a/locked/hidden");
    t.file(b"/m/a/z");
    t.file(b"/m/b");
    let (entries, log) = walk_tree(t, b"/m", &[], 2);
    assert_eq!(paths(&entries), ["", "a", "a/locked", "a/z", "b"]);
    assert_eq!(log.warnings.len(), 1);
    assert!(
        log.warnings[0].starts_with("cannot list /m/a/locked: Permission denied (os error 13)"),
        "{:?}",
        log.warnings
    );
}

#[test]
fn a_listing_that_breaks_off_keeps_what_came_and_the_walk_goes_on() {
    let mut t = MemTree::new();
    t.dir(b"/m/d").break_after = Some(2);
    for f in ["1", "2", "3", "4"] {
        t.file(format!("/m/d/{f}").as_bytes());
    }
    t.file(b"/m/e");
    let (entries, log) = walk_tree(t, b"/m", &[], 100);
    assert_eq!(paths(&entries), ["", "d", "d/1", "d/2", "e"]);
    assert_eq!(log.warnings.len(), 1);
    assert!(log.warnings[0].starts_with("cannot list /m/d: device went away"), "{:?}", log.warnings);
}

#[test]
fn an_unlistable_root_still_yields_the_root() {
    let mut t = MemTree::new();
    t.nodes.get_mut(&b"/m"[..]).unwrap().list_error = Some(PluginError::PermissionDenied("/m: nope".into()));
    t.file(b"/m/f");
    let (entries, log) = walk_tree(t, b"/m", &[], 100);
    assert_eq!(paths(&entries), [""]);
    assert_eq!(log.warnings.len(), 1);
}

#[test]
fn an_unreadable_directory_on_disk_warns_and_the_walk_goes_on() {
    if is_root() {
        return; // root reads everything; the in-memory tests cover the logic
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir(r.join("locked")).unwrap();
    std::fs::write(r.join("locked/f"), "").unwrap();
    std::fs::write(r.join("z"), "").unwrap();
    std::fs::set_permissions(r.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let (entries, log) = walk_dir(r, &[], 100);
    std::fs::set_permissions(r.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(paths(&entries), ["", "locked", "z"]);
    assert_eq!(find(&entries, b"locked").meta.mode, 0);
    assert_eq!(log.warnings.len(), 1, "{:?}", log.warnings);
    assert!(log.warnings[0].contains(&*r.join("locked").to_string_lossy()));
}

#[test]
fn the_root_must_exist_and_be_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    std::fs::write(&f, "").unwrap();
    let open = |p: &Path| DirSession::new(StdTree, &config(p.as_os_str().as_bytes(), &[]), Collect::default());
    match open(&f).err() {
        Some(PluginError::Config(m)) => assert_eq!(m, format!("path: {} is not a directory", f.display())),
        other => panic!("{other:?}"),
    }
    let link = tmp.path().join("link");
    symlink(tmp.path(), &link).unwrap();
    match open(&link).err() {
        Some(PluginError::Config(m)) => {
            assert!(m.starts_with(&format!("path: {} is not a directory (it is a symlink to ", link.display())), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let missing = tmp.path().join("missing");
    match open(&missing).err() {
        Some(PluginError::NotFound(m)) => assert!(m.contains(&*missing.to_string_lossy()), "{m}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Content

#[test]
fn open_reads_content_relative_to_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir(r.join(OsStr::from_bytes(b"d\xff"))).unwrap();
    std::fs::write(r.join(OsStr::from_bytes(b"d\xff/f")), "hello").unwrap();
    let mut s = DirSession::new(StdTree, &config(r.as_os_str().as_bytes(), &[]), Collect::default()).unwrap();
    let entries = drain(&mut s, 10);
    assert_eq!(entries.len(), 3);
    let mut content = Vec::new();
    s.open(b"d\xff/f").unwrap().read_to_end(&mut content).unwrap();
    assert_eq!(content, b"hello");
    assert!(matches!(s.open(b"missing").err(), Some(PluginError::NotFound(_))));
    for bad in [&b""[..], b"/etc/passwd", b"../x", b"d\xff/../f", b"./f", b"d\xff//f"] {
        assert!(matches!(s.open(bad).err(), Some(PluginError::NotFound(_))), "{}", display(bad));
    }
}

#[test]
fn open_goes_through_the_tree_with_the_absolute_path() {
    let mut t = MemTree::new();
    t.file(b"/m/f");
    let mut s = DirSession::new(t, &config(b"/m/", &[]), Collect::default()).unwrap();
    let mut content = Vec::new();
    s.open(b"f").unwrap().read_to_end(&mut content).unwrap();
    assert_eq!(content, b"/m/f");
}

#[test]
fn the_filesystem_root_works_as_a_root() {
    let mut t = MemTree::default();
    t.dir(b"/");
    t.dir(b"/etc");
    t.file(b"/etc/hosts");
    t.file(b"/etc/broken").meta = Err(PluginError::Io("/etc/broken: nope".into()));
    let (entries, log) = walk_tree(t, b"/", &[], 10);
    assert_eq!(paths(&entries), ["", "etc", "etc/hosts"]);
    assert_eq!(log.warnings, ["cannot read /etc/broken: nope"]);
}

// ---------------------------------------------------------------------------
// Configuration

fn config_error(json: &str) -> String {
    let err = plugin_sdk::parse_config::<Config>(json).and_then(|c| Directory::validate(&c)).unwrap_err();
    match err {
        PluginError::Config(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn validate_checks_the_config_and_wants_the_path() {
    let c: Config = plugin_sdk::parse_config(r#"{"path": "/data/docs", "exclude": ["**/*.tmp"]}"#).unwrap();
    assert_eq!(Directory::validate(&c).unwrap(), vec![Want::ReadPath("/data/docs".into())]);
    let c: Config = plugin_sdk::parse_config(r#"{"path": "/data"}"#).unwrap();
    assert!(c.exclude.is_empty());
    assert_eq!(config_error(r#"{"path": "data/docs"}"#), "path: must be an absolute path, got \"data/docs\"");
    assert_eq!(config_error(r#"{"path": ""}"#), "path: must be an absolute path, got \"\"");
    assert!(config_error(r#"{"path": "/data/../etc"}"#).starts_with("path: must not contain \"..\""));
    assert_eq!(
        config_error(r#"{"path": "/x", "exclude": ["ok", "a["]}"#),
        "exclude[1]: invalid glob \"a[\": unclosed character class; missing ']'"
    );
    assert!(config_error(r#"{"path": "/x", "excludes": []}"#).starts_with("excludes: unknown field"));
    assert_eq!(config_error(r#"{}"#), "missing field `path`");
    // A path with dots that are not `..` is fine.
    let c: Config = plugin_sdk::parse_config(r#"{"path": "/data/..hidden/./x"}"#).unwrap();
    assert!(Directory::validate(&c).is_ok());
}

#[test]
fn info_names_the_plugin() {
    let info = Directory::info();
    assert_eq!(info.name, "directory");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.description, "Backs up a local directory tree with its POSIX metadata");
}

#[test]
fn error_reasons_drop_the_case_name_and_a_repeated_path() {
    use crate::walk::reason;
    assert_eq!(reason(&PluginError::Io("/a/b: Permission denied".into()), "/a/b"), "Permission denied");
    assert_eq!(reason(&PluginError::NotFound("/a/bc: gone".into()), "/a/b"), "/a/bc: gone");
    assert_eq!(reason(&PluginError::Other("plain".into()), "/a"), "plain");
}
