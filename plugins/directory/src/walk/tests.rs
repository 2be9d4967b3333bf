use super::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

/// `std::fs` as a [`Tree`], sorting listings as the host does.
struct StdTree;

fn meta_of(path: &Path) -> Result<Metadata, PluginError> {
    let m = std::fs::symlink_metadata(path).map_err(|e| PluginError::Io(e.to_string()))?;
    let ft = m.file_type();
    use std::os::unix::fs::FileTypeExt;
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
    let symlink_target = ft.is_symlink().then(|| std::fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec());
    Ok(Metadata {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec() as u32,
        size: if kind == EntryKind::File { m.len() } else { 0 },
        symlink_target,
        device: None,
    })
}

impl Tree for StdTree {
    type Listing = std::vec::IntoIter<Result<Child, PluginError>>;

    fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        meta_of(Path::new(OsStr::from_bytes(path)))
    }

    fn list_dir(&self, path: &[u8]) -> Result<Self::Listing, PluginError> {
        let dir = Path::new(OsStr::from_bytes(path));
        let mut children: Vec<Child> = std::fs::read_dir(dir)
            .map_err(|e| PluginError::Io(e.to_string()))?
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().as_bytes().to_vec(), meta_of(&e.path()))
            })
            .collect();
        children.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(children.into_iter().map(Ok).collect::<Vec<_>>().into_iter())
    }

    fn open(&self, path: &[u8]) -> Result<Box<dyn std::io::Read>, PluginError> {
        let f = std::fs::File::open(Path::new(OsStr::from_bytes(path))).map_err(|e| PluginError::Io(e.to_string()))?;
        Ok(Box::new(f))
    }
}

fn walk_all(root: &Path, excludes: &[&str], batch: usize) -> (Vec<Entry>, Vec<String>) {
    let patterns: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
    let mut w = Walker::new(StdTree, root.as_os_str().as_bytes().to_vec(), Excludes::new(&patterns).unwrap()).unwrap();
    let (mut all, mut warnings) = (Vec::new(), Vec::new());
    loop {
        let b = w.next_batch(batch, &mut |m| warnings.push(m)).unwrap();
        if b.is_empty() {
            break;
        }
        all.extend(b);
    }
    (all, warnings)
}

fn paths(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.path).into_owned()).collect()
}

#[test]
fn order_is_duplicity_index_order() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("sub/deeper")).unwrap();
    std::fs::create_dir(r.join("sub-x")).unwrap();
    std::fs::create_dir(r.join("empty")).unwrap();
    std::fs::write(r.join("sub/deeper/d.txt"), "d").unwrap();
    std::fs::write(r.join("sub/a.txt"), "a").unwrap();
    std::fs::write(r.join("B"), "").unwrap();
    let (entries, warnings) = walk_all(r, &[], 1000);
    assert!(warnings.is_empty());
    assert_eq!(paths(&entries), ["", "B", "empty", "sub", "sub/a.txt", "sub/deeper", "sub/deeper/d.txt", "sub-x"]);
    assert_eq!(entries[0].meta.kind, EntryKind::Directory);
    // Batching changes nothing.
    let (one_by_one, _) = walk_all(r, &[], 1);
    assert_eq!(paths(&one_by_one), paths(&entries));
}

#[test]
fn odd_names_symlinks_and_fifos_come_through() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let raw = OsStr::from_bytes(b"bad\xffname");
    std::fs::write(r.join(raw), "x").unwrap();
    std::fs::write(r.join("new\nline"), "x").unwrap();
    std::fs::write(r.join("with space"), "x").unwrap();
    let long = "l".repeat(150);
    std::fs::write(r.join(&long), "x").unwrap();
    symlink("/nonexistent/target", r.join("dangling")).unwrap();
    symlink("/etc", r.join("outside")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(r.join("fifo")).status().unwrap().success());
    let (entries, _) = walk_all(r, &[], 100);
    let names: Vec<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
    assert!(names.contains(&&b"bad\xffname"[..]));
    assert!(names.contains(&&b"new\nline"[..]));
    assert!(names.contains(&long.as_bytes()));
    let outside = entries.iter().find(|e| e.path == b"outside").unwrap();
    assert_eq!(outside.meta.kind, EntryKind::Symlink);
    assert_eq!(outside.meta.symlink_target.as_deref(), Some(&b"/etc"[..]));
    assert!(!names.iter().any(|n| n.starts_with(b"outside/")), "followed a symlink");
    assert_eq!(entries.iter().find(|e| e.path == b"fifo").unwrap().meta.kind, EntryKind::Fifo);
}

#[test]
fn excludes_take_subtrees_and_star_stays_in_one_component() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("cache/deep")).unwrap();
    std::fs::create_dir_all(r.join("docs/sub")).unwrap();
    std::fs::write(r.join("cache/deep/x"), "").unwrap();
    std::fs::write(r.join("docs/a.tmp"), "").unwrap();
    std::fs::write(r.join("docs/sub/b.tmp"), "").unwrap();
    std::fs::write(r.join("top.log"), "").unwrap();
    std::fs::write(r.join("docs/keep.log"), "").unwrap();
    let (entries, _) = walk_all(r, &["cache", "**/*.tmp", "*.log"], 100);
    assert_eq!(paths(&entries), ["", "docs", "docs/keep.log", "docs/sub"]);
    assert!(matches!(Excludes::new(&["a[".into()]), Err(PluginError::Config(m)) if m.starts_with("exclude[0]")));
}

#[test]
fn unreadable_directories_warn_and_the_walk_goes_on() {
    if std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(true) {
        return; // root reads everything; nothing to test
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir(r.join("locked")).unwrap();
    std::fs::write(r.join("z"), "").unwrap();
    std::fs::set_permissions(r.join("locked"), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let (entries, warnings) = walk_all(r, &[], 100);
    std::fs::set_permissions(r.join("locked"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(paths(&entries), ["", "locked", "z"]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn the_root_must_be_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), "").unwrap();
    let f = tmp.path().join("f");
    let r = Walker::new(StdTree, f.as_os_str().as_bytes().to_vec(), Excludes::new(&[]).unwrap());
    assert!(matches!(r.err(), Some(PluginError::Config(m)) if m.contains("not a directory")));
    assert!(Walker::new(StdTree, b"/nonexistent/x".to_vec(), Excludes::new(&[]).unwrap()).is_err());
}
