//! Writing restored entries under a directory, and never outside it.
//!
//! Entries arrive in path order. The writer keeps the chain of directories
//! from the restore root to the current entry open as file descriptors and
//! creates every entry relative to its parent's descriptor, opening each
//! component with `O_NOFOLLOW`: a `..` component, an absolute path, or a
//! symlink restored earlier can never redirect a write elsewhere. Directory
//! modes and times are applied when the writer leaves a directory, so a
//! read-only directory still receives its children.
//!
//! Attributes are ignored but one: a regular file with a `maildir.info`
//! attribute (Maildir's info, `2,FS`) is restored as `<name>:<info>`, the
//! name Maildir readers take a message's flags from, so a backup keeps one
//! path per message while its flags change.

use crate::error::Error;
use orchestrator_runtime::types::{Entry, EntryKind, Metadata};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Show a byte path to people.
pub fn show(path: &[u8]) -> String {
    if path.is_empty() { ".".into() } else { String::from_utf8_lossy(path).into_owned() }
}

/// The components of an entry path, refusing anything that could leave the
/// restore directory.
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, Error> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let bad = parts.iter().any(|c| c.is_empty() || *c == b"." || *c == b".." || c.contains(&0));
    if bad {
        return Err(Error::Entry(format!(
            "refusing to restore {:?}: the path is absolute or contains `..`, `.` or an empty component",
            show(path)
        )));
    }
    Ok(parts)
}

/// The attribute whose value a regular file's restored name ends with.
pub const MAILDIR_INFO: &str = "maildir.info";
/// The longest Maildir info accepted: `2,` and one of each ASCII letter.
const MAX_MAILDIR_INFO: usize = 2 + 52;

/// The name a regular file named `name` is restored under: `<name>:<info>`
/// when the entry has a `maildir.info` attribute, which must be `2,`
/// followed by ASCII letters only.
pub fn restored_name<'a>(name: &'a [u8], entry: &Entry) -> Result<Cow<'a, [u8]>, Error> {
    let info = entry.attributes.iter().rev().find(|(n, _)| n == MAILDIR_INFO).map(|(_, v)| v.as_str());
    let Some(info) = info else { return Ok(Cow::Borrowed(name)) };
    let valid = info.len() <= MAX_MAILDIR_INFO
        && info.strip_prefix("2,").is_some_and(|flags| flags.bytes().all(|b| b.is_ascii_alphabetic()));
    if !valid {
        return Err(Error::Entry(format!(
            "refusing to restore {:?}: its {MAILDIR_INFO} attribute {info:?} is not Maildir info (`2,` followed \
             by at most 52 ASCII letters)",
            show(&entry.path)
        )));
    }
    let mut full = name.to_vec();
    full.push(b':');
    full.extend_from_slice(info.as_bytes());
    Ok(Cow::Owned(full))
}

struct OpenDir {
    name: Vec<u8>,
    fd: OwnedFd,
    meta: Option<Metadata>,
}

/// Restores entries under one directory.
pub struct RestoreWriter {
    root: PathBuf,
    root_fd: OwnedFd,
    root_meta: Option<Metadata>,
    stack: Vec<OpenDir>,
    as_root: bool,
    /// Entries skipped with a reason, reported at the end.
    pub skipped: Vec<String>,
}

fn err(what: &str, path: &[u8], e: impl std::fmt::Display) -> Error {
    Error::Entry(format!("{what} {}: {e}", show(path)))
}

fn timestamps(meta: &Metadata) -> Timestamps {
    let t = Timespec { tv_sec: meta.mtime, tv_nsec: meta.mtime_nsec.min(999_999_999) as _ };
    Timestamps { last_access: t, last_modification: t }
}

impl RestoreWriter {
    /// A writer restoring into `root`, which must not exist or be an empty
    /// directory unless `force` is set.
    pub fn new(root: &Path, force: bool) -> Result<RestoreWriter, Error> {
        match std::fs::read_dir(root) {
            Ok(mut entries) => {
                if !force && entries.next().is_some() {
                    return Err(Error::Usage(format!(
                        "{} is not empty; restore into a new or empty directory, or pass --force to \
                         overwrite what is there",
                        root.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(root).map_err(|e| Error::Usage(format!("creating {}: {e}", root.display())))?;
            }
            Err(e) => return Err(Error::Usage(format!("{}: {e}", root.display()))),
        }
        let root_fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Usage(format!("opening {}: {e}", root.display())))?;
        Ok(RestoreWriter {
            root: root.to_path_buf(),
            root_fd,
            root_meta: None,
            stack: Vec::new(),
            as_root: rustix::process::geteuid().is_root(),
            skipped: Vec::new(),
        })
    }

    /// Where entries go.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn current(&self) -> &OwnedFd {
        self.stack.last().map(|d| &d.fd).unwrap_or(&self.root_fd)
    }

    /// Leave directories until the stack is a prefix of `parent`, then enter
    /// (creating when missing) the rest of `parent`.
    fn enter(&mut self, parent: &[&[u8]], path: &[u8]) -> Result<(), Error> {
        let common = self.stack.iter().zip(parent).take_while(|(d, c)| d.name == **c).count();
        while self.stack.len() > common {
            let dir = self.stack.pop().expect("len > common");
            self.apply_dir(&dir)?;
        }
        for name in &parent[common..] {
            let fd = match self.open_dir(name) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    // The backup lacks the parent's own entry (a path-limited
                    // read): create it privately; it gets no metadata.
                    rustix::fs::mkdirat(self.current(), OsStr::from_bytes(name), Mode::from_raw_mode(0o700))
                        .map_err(|e| err("creating directory for", path, e))?;
                    self.open_dir(name).map_err(|e| err("opening directory for", path, e))?
                }
                Err(e) => {
                    return Err(Error::Entry(format!(
                        "refusing to restore {:?}: a parent is not a directory ({e})",
                        show(path)
                    )));
                }
            };
            self.stack.push(OpenDir { name: name.to_vec(), fd, meta: None });
        }
        Ok(())
    }

    fn open_dir(&self, name: &[u8]) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat(
            self.current(),
            OsStr::from_bytes(name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn apply_dir(&self, dir: &OpenDir) -> Result<(), Error> {
        if let Some(meta) = &dir.meta {
            self.apply_fd(&dir.fd, meta, &dir.name)?;
        }
        Ok(())
    }

    fn apply_fd(&self, fd: impl AsFd, meta: &Metadata, path: &[u8]) -> Result<(), Error> {
        if self.as_root {
            rustix::fs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )
            .map_err(|e| err("setting owner of", path, e))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode & 0o7777))
            .map_err(|e| err("setting mode of", path, e))?;
        rustix::fs::futimens(&fd, &timestamps(meta)).map_err(|e| err("setting time of", path, e))?;
        Ok(())
    }

    /// Give the node `name` of the current directory its owner, when running
    /// as root (others cannot give files away); never follows a symlink.
    fn chown_at(&self, name: &OsStr, meta: &Metadata, path: &[u8]) -> Result<(), Error> {
        if !self.as_root {
            return Ok(());
        }
        let (uid, gid) = (rustix::fs::Uid::from_raw(meta.uid), rustix::fs::Gid::from_raw(meta.gid));
        rustix::fs::chownat(self.current(), name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| err("setting owner of", path, e))
    }

    /// Remove whatever stands at `name` in the current directory (only with
    /// `--force`, since a fresh restore directory is empty).
    fn clear(&self, name: &OsStr) {
        let fd = self.current();
        if let Ok(st) = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            let _ = rustix::fs::unlinkat(fd, name, flags);
        }
    }

    /// Restore one entry. A regular file's content is written to the returned
    /// writer, which must then be passed to [`RestoreWriter::finish_file`].
    pub fn add(&mut self, entry: &Entry) -> Result<Option<FileWriter>, Error> {
        let parts = components(&entry.path)?;
        let Some((name, parent)) = parts.split_last() else {
            if entry.meta.kind != EntryKind::Directory {
                return Err(Error::Entry("the root of a restore must be a directory".into()));
            }
            self.root_meta = Some(entry.meta.clone());
            return Ok(None);
        };
        self.enter(parent, &entry.path)?;
        let os_name = OsStr::from_bytes(name);
        let meta = &entry.meta;
        let path = &entry.path;
        match meta.kind {
            EntryKind::Directory => {
                match rustix::fs::mkdirat(self.current(), os_name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(err("creating directory", path, e)),
                }
                let fd = self.open_dir(name).map_err(|e| err("refusing to restore into", path, e))?;
                self.stack.push(OpenDir { name: name.to_vec(), fd, meta: Some(meta.clone()) });
                Ok(None)
            }
            EntryKind::File => {
                let file_name = restored_name(name, entry)?;
                let os_name = OsStr::from_bytes(&file_name);
                self.clear(os_name);
                let fd = rustix::fs::openat(
                    self.current(),
                    os_name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| err("creating", path, e))?;
                Ok(Some(FileWriter {
                    file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd)),
                    path: path.clone(),
                    meta: meta.clone(),
                }))
            }
            EntryKind::Symlink => {
                self.clear(os_name);
                let target = meta.symlink_target.as_deref().unwrap_or_default();
                rustix::fs::symlinkat(OsStr::from_bytes(target), self.current(), os_name)
                    .map_err(|e| err("creating symlink", path, e))?;
                self.chown_at(os_name, meta, path)?;
                rustix::fs::utimensat(self.current(), os_name, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| err("setting time of", path, e))?;
                Ok(None)
            }
            EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => {
                let (file_type, dev) = match (meta.kind, meta.device) {
                    (EntryKind::Fifo, _) => (FileType::Fifo, 0),
                    (kind, Some((major, minor))) if self.as_root => (
                        if kind == EntryKind::CharDevice { FileType::CharacterDevice } else { FileType::BlockDevice },
                        rustix::fs::makedev(major, minor),
                    ),
                    _ => {
                        self.skipped.push(format!("{} (a device; only root can create it)", show(path)));
                        return Ok(None);
                    }
                };
                self.clear(os_name);
                rustix::fs::mknodat(self.current(), os_name, file_type, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| err("creating", path, e))?;
                self.chown_at(os_name, meta, path)?;
                rustix::fs::chmodat(self.current(), os_name, Mode::from_raw_mode(meta.mode & 0o7777), AtFlags::empty())
                    .map_err(|e| err("setting mode of", path, e))?;
                rustix::fs::utimensat(self.current(), os_name, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| err("setting time of", path, e))?;
                Ok(None)
            }
            EntryKind::Socket => {
                self.skipped.push(format!("{} (a socket)", show(path)));
                Ok(None)
            }
        }
    }

    /// Complete a regular file: flush it and apply its metadata.
    pub fn finish_file(&self, writer: FileWriter) -> Result<(), Error> {
        let FileWriter { file, path, meta } = writer;
        let file = file.into_inner().map_err(|e| err("writing", &path, e.error()))?;
        self.apply_fd(&file, &meta, &path)
    }

    /// Apply the metadata of every directory still open, and of the root.
    pub fn finish(mut self) -> Result<Vec<String>, Error> {
        while let Some(dir) = self.stack.pop() {
            self.apply_dir(&dir)?;
        }
        if let Some(meta) = self.root_meta.take() {
            self.apply_fd(&self.root_fd, &meta, b"")?;
        }
        Ok(self.skipped)
    }
}

/// A regular file being restored.
pub struct FileWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: Vec<u8>,
    meta: Metadata,
}

impl FileWriter {
    /// Append content.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).map_err(|e| err("writing", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn meta(kind: EntryKind, mode: u32) -> Metadata {
        Metadata {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            mtime_nsec: 0,
            size: 0,
            symlink_target: None,
            device: None,
        }
    }

    fn entry(path: &[u8], meta: Metadata) -> Entry {
        Entry { path: path.to_vec(), meta, attributes: vec![] }
    }

    #[test]
    fn entries_that_would_escape_are_refused() {
        for bad in [&b"/etc/passwd"[..], b"../x", b"a/../../x", b"a//b", b"./a"] {
            assert!(components(bad).is_err(), "{:?}", show(bad));
        }
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let mut w = RestoreWriter::new(&tmp.path().join("r"), false).unwrap();
        w.add(&entry(b"", meta(EntryKind::Directory, 0o755))).unwrap();
        // A symlink pointing out, then an entry "through" it.
        let mut link = meta(EntryKind::Symlink, 0o777);
        link.symlink_target = Some(outside.as_os_str().as_bytes().to_vec());
        w.add(&entry(b"evil", link)).unwrap();
        assert!(w.add(&entry(b"evil/passwd", meta(EntryKind::File, 0o644))).is_err());
        w.finish().unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "wrote through a symlink");
    }

    #[test]
    fn modes_times_and_readonly_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        let mut w = RestoreWriter::new(&root, false).unwrap();
        w.add(&entry(b"", meta(EntryKind::Directory, 0o750))).unwrap();
        w.add(&entry(b"ro", meta(EntryKind::Directory, 0o555))).unwrap();
        let mut f = w.add(&entry(b"ro/f", meta(EntryKind::File, 0o4751))).unwrap().unwrap();
        f.write(b"data").unwrap();
        w.finish_file(f).unwrap();
        w.add(&entry(b"ro/fifo", meta(EntryKind::Fifo, 0o640))).unwrap();
        if let Some(f) = w.add(&entry(b"z", meta(EntryKind::File, 0o600))).unwrap() {
            w.finish_file(f).unwrap();
        }
        w.finish().unwrap();
        let m = std::fs::metadata(root.join("ro/f")).unwrap();
        assert_eq!((m.permissions().mode() & 0o7777, m.mtime()), (0o4751, 1_600_000_000));
        assert_eq!(std::fs::read(root.join("ro/f")).unwrap(), b"data");
        assert_eq!(std::fs::metadata(root.join("ro")).unwrap().permissions().mode() & 0o7777, 0o555);
        assert_eq!(std::fs::symlink_metadata(root.join("ro/fifo")).unwrap().permissions().mode() & 0o7777, 0o640);
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777, 0o750);
        std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn with_attributes(path: &[u8], meta: Metadata, attributes: &[(&str, &str)]) -> Entry {
        let attributes = attributes.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        Entry { path: path.to_vec(), meta, attributes }
    }

    fn restore_file(w: &mut RestoreWriter, e: &Entry, content: &[u8]) -> Result<(), Error> {
        let mut f = w.add(e)?.expect("a file");
        f.write(content)?;
        w.finish_file(f)
    }

    #[test]
    fn maildir_info_ends_the_restored_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        let mut w = RestoreWriter::new(&root, false).unwrap();
        w.add(&entry(b"", meta(EntryKind::Directory, 0o700))).unwrap();
        // A directory's maildir.info is ignored.
        w.add(&with_attributes(b"cur", meta(EntryKind::Directory, 0o700), &[(MAILDIR_INFO, "2,S")])).unwrap();
        let flagged = [("imap.flags", "\\Flagged \\Seen"), (MAILDIR_INFO, "2,FS")];
        restore_file(&mut w, &with_attributes(b"cur/1.M1.host", meta(EntryKind::File, 0o600), &flagged), b"one")
            .unwrap();
        restore_file(
            &mut w,
            &with_attributes(b"cur/2.M2.host", meta(EntryKind::File, 0o600), &[(MAILDIR_INFO, "2,")]),
            b"two",
        )
        .unwrap();
        // Other attributes change nothing.
        let other = [("imap.flags", "\\Seen")];
        restore_file(&mut w, &with_attributes(b"cur/3.M3.host", meta(EntryKind::File, 0o640), &other), b"three")
            .unwrap();
        w.finish().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(root.join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["1.M1.host:2,FS", "2.M2.host:2,", "3.M3.host"]);
        assert_eq!(std::fs::read(root.join("cur/1.M1.host:2,FS")).unwrap(), b"one");
        let m = std::fs::metadata(root.join("cur/3.M3.host")).unwrap();
        assert_eq!((m.permissions().mode() & 0o7777, m.mtime()), (0o640, 1_600_000_000));
        assert_eq!(std::fs::metadata(root.join("cur")).unwrap().permissions().mode() & 0o7777, 0o700);
    }

    #[test]
    fn bad_maildir_info_is_refused_naming_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        let mut w = RestoreWriter::new(&root, false).unwrap();
        w.add(&entry(b"", meta(EntryKind::Directory, 0o700))).unwrap();
        let long = format!("2,{}", "S".repeat(53));
        for bad in ["2,F/S", "2,/../../x", "2,F\0", "1,S", "2,\u{15e}", "", ",S", "2,F S", "2,F:2,S", long.as_str()] {
            let e = with_attributes(b"msg", meta(EntryKind::File, 0o600), &[(MAILDIR_INFO, bad)]);
            let error = w.add(&e).err().unwrap_or_else(|| panic!("{bad:?} accepted")).to_string();
            assert!(error.contains("msg") && error.contains(MAILDIR_INFO), "{error}");
        }
        let ok = format!("2,{}", "S".repeat(52));
        restore_file(&mut w, &with_attributes(b"msg", meta(EntryKind::File, 0o600), &[(MAILDIR_INFO, &ok)]), b"")
            .unwrap();
        w.finish().unwrap();
        let names: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from(format!("msg:{ok}"))]);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing was written beside the restore");
    }

    #[test]
    fn a_non_empty_target_needs_force() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("x"), "").unwrap();
        assert!(RestoreWriter::new(tmp.path(), false).err().unwrap().to_string().contains("--force"));
        assert!(RestoreWriter::new(tmp.path(), true).is_ok());
    }
}
