//! Read-only access to granted trees with full POSIX metadata.
//!
//! Each grant is opened once as a capability directory (`cap_std::fs::Dir`);
//! every path is resolved inside it, so neither `..` nor a symlink can lead out
//! of the grant. The final component is never followed: metadata is `lstat`,
//! and `open` refuses anything but a regular file (`O_NOFOLLOW`).

use crate::bindings::PluginError;
use crate::bindings::source::orchestrator::plugin::filesystem as wit;
use crate::bindings::source::orchestrator::plugin::types::{EntryKind, Metadata};
use crate::state::PluginState;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use wasmtime::component::Resource;

/// Resources one plugin may hold open at once (files and listings).
const MAX_OPEN: usize = 256;

/// One granted tree; `dir` is `None` when the tree does not exist (yet), so
/// the plugin hears "no such file or directory", not "outside the grant".
struct Grant {
    root: PathBuf,
    dir: Option<Dir>,
}

/// The trees one plugin instance may read.
#[derive(Default)]
pub struct FsCtx {
    grants: Vec<Grant>,
    open: usize,
    /// The directory of the last file opened (by absolute path), since
    /// sources read a directory's files one after another.
    last_parent: Option<(PathBuf, Dir)>,
}

/// A directory listing handed to a plugin.
pub struct Listing {
    entries: std::vec::IntoIter<(Vec<u8>, Result<Metadata, PluginError>)>,
}

/// A regular file opened for a plugin.
pub struct OpenFile {
    file: std::fs::File,
    /// Bytes expected before the end (the size at open, less what was read):
    /// a read reserves exactly that, so a small file costs one small buffer
    /// and a large one full chunks, neither grown nor zeroed.
    expected: u64,
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl FsCtx {
    /// Open every granted tree. A tree that cannot be opened is an error now,
    /// not a confusing failure in the middle of a run.
    pub fn new(paths: &[String]) -> Result<FsCtx, String> {
        let mut grants = Vec::new();
        for p in paths {
            let root = PathBuf::from(p);
            if !root.is_absolute() {
                return Err(format!("granted path {p} is not absolute"));
            }
            match Dir::open_ambient_dir(&root, ambient_authority()) {
                Ok(dir) => grants.push(Grant { root, dir: Some(dir) }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Not an error yet: the plugin reports a missing root in its
                    // own words when it looks for it.
                    tracing::debug!("granted path {p} does not exist");
                    grants.push(Grant { root, dir: None });
                }
                Err(e) => return Err(format!("cannot open granted path {p}: {e}")),
            }
        }
        Ok(FsCtx { grants, open: 0, last_parent: None })
    }

    /// The open directory of the grant holding `path`, and the path relative
    /// to it.
    fn resolve(&self, path: &[u8]) -> Result<(&Dir, PathBuf), PluginError> {
        let path = Path::new(OsStr::from_bytes(path));
        let outside =
            || PluginError::PermissionDenied(format!("{} is outside the paths granted to this plugin", display(path)));
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(outside());
        }
        for grant in &self.grants {
            if let Ok(rel) = path.strip_prefix(&grant.root) {
                return match &grant.dir {
                    Some(dir) => Ok((dir, rel.to_path_buf())),
                    None => Err(PluginError::NotFound(format!("{}: no such file or directory", display(path)))),
                };
            }
        }
        Err(outside())
    }

    /// Open the directory holding `rel` (inside the grant) and return it with
    /// the final name. The root of a grant has no parent inside it, so it is
    /// addressed as `.` of the grant itself.
    fn parent(grant: &Dir, rel: &Path, full: &Path) -> Result<(Dir, PathBuf), PluginError> {
        let name = match rel.file_name() {
            Some(n) => PathBuf::from(n),
            None => return Ok((grant.try_clone().map_err(|e| io_error(full, e))?, ".".into())),
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        if parent.as_os_str().is_empty() {
            return Ok((grant.try_clone().map_err(|e| io_error(full, e))?, name));
        }
        let dir = grant.open_dir(parent).map_err(|e| io_error(full, e))?;
        Ok((dir, name))
    }

    /// `lstat` of a granted path.
    pub fn lstat(&self, path: &[u8]) -> Result<Metadata, PluginError> {
        let (grant, rel) = self.resolve(path)?;
        let full = Path::new(OsStr::from_bytes(path));
        let (dir, name) = Self::parent(grant, &rel, full)?;
        lstat_at(&dir, &name, full)
    }

    /// Every child of a granted directory, sorted bytewise, with metadata.
    pub fn list_dir(&self, path: &[u8]) -> Result<Listing, PluginError> {
        let (grant, rel) = self.resolve(path)?;
        let full = Path::new(OsStr::from_bytes(path));
        let dir = if rel.as_os_str().is_empty() {
            grant.try_clone().map_err(|e| io_error(full, e))?
        } else {
            let (parent, name) = Self::parent(grant, &rel, full)?;
            // Never list through a symlink: the plugin asked for this path, not
            // for wherever it points.
            let meta = lstat_at(&parent, &name, full)?;
            if meta.kind != EntryKind::Directory {
                return Err(PluginError::Io(format!("{} is not a directory", display(full))));
            }
            parent.open_dir(&name).map_err(|e| io_error(full, e))?
        };
        let mut entries = Vec::new();
        for entry in dir.entries().map_err(|e| io_error(full, e))? {
            let entry = entry.map_err(|e| io_error(full, e))?;
            let name = entry.file_name();
            let child = full.join(&name);
            let meta = match lstat_at(&dir, Path::new(&name), &child) {
                // Vanished between listing and stat: it is simply not there.
                Err(PluginError::NotFound(_)) => continue,
                other => other,
            };
            entries.push((name.as_bytes().to_vec(), meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Listing { entries: entries.into_iter() })
    }

    /// Open a granted regular file without following a final symlink.
    pub fn open(&mut self, path: &[u8]) -> Result<OpenFile, PluginError> {
        let (grant, rel) = self.resolve(path)?;
        let full = Path::new(OsStr::from_bytes(path)).to_path_buf();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = rel
            .file_name()
            .ok_or_else(|| PluginError::Io(format!("{} is not a regular file", display(&full))))?
            .to_os_string();
        // Keyed by the absolute parent: relative paths of two grants collide.
        let parent_abs = full.parent().unwrap_or(Path::new("/")).to_path_buf();
        let cached = matches!(&self.last_parent, Some((p, _)) if *p == parent_abs);
        if !cached {
            let dir = if parent_rel.as_os_str().is_empty() { grant.try_clone() } else { grant.open_dir(&parent_rel) }
                .map_err(|e| io_error(&full, e))?;
            self.last_parent = Some((parent_abs, dir));
        }
        let (_, dir) = self.last_parent.as_ref().expect("set above");
        let fd = rustix::fs::openat(
            dir,
            Path::new(&name),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| io_error(&full, e.into()))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(&full, e.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(PluginError::Io(format!("{} is not a regular file", display(&full))));
        }
        Ok(OpenFile { file: std::fs::File::from(fd), expected: stat.st_size.max(0) as u64 })
    }
}

fn io_error(path: &Path, e: std::io::Error) -> PluginError {
    let p = display(path);
    match e.kind() {
        std::io::ErrorKind::NotFound => PluginError::NotFound(format!("{p}: no such file or directory")),
        // cap-std's refusal to leave the grant.
        _ if e.raw_os_error().is_none() && e.to_string().contains("outside") => {
            PluginError::PermissionDenied(format!("{p} leads outside the paths granted to this plugin"))
        }
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            PluginError::PermissionDenied(format!("{p} goes through a symlink, which this plugin may not follow"))
        }
        _ => PluginError::Io(format!("{p}: {e}")),
    }
}

fn lstat_at(dir: &Dir, name: &Path, full: &Path) -> Result<Metadata, PluginError> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_error(full, e.into()))?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Directory,
        FileType::Symlink => EntryKind::Symlink,
        FileType::Fifo => EntryKind::Fifo,
        FileType::CharacterDevice => EntryKind::CharDevice,
        FileType::BlockDevice => EntryKind::BlockDevice,
        FileType::Socket => EntryKind::Socket,
        FileType::Unknown => return Err(PluginError::Io(format!("{}: unknown file type", display(full)))),
    };
    let symlink_target = if kind == EntryKind::Symlink {
        let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| io_error(full, e.into()))?;
        Some(target.into_bytes())
    } else {
        None
    };
    let device = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice)
        .then(|| (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)));
    Ok(Metadata {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        size: if kind == EntryKind::File { st.st_size as u64 } else { 0 },
        symlink_target,
        device,
    })
}

impl PluginState {
    fn fs(&mut self) -> Result<&mut FsCtx, PluginError> {
        self.fs.as_mut().ok_or_else(|| PluginError::PermissionDenied("this plugin was granted no file access".into()))
    }

    fn count_open(&mut self) -> Result<(), PluginError> {
        let fs = self.fs()?;
        if fs.open >= MAX_OPEN {
            return Err(PluginError::Other(format!(
                "the plugin holds {MAX_OPEN} open files and listings; close some first"
            )));
        }
        fs.open += 1;
        Ok(())
    }

    fn count_closed(&mut self) {
        if let Some(fs) = self.fs.as_mut() {
            fs.open = fs.open.saturating_sub(1);
        }
    }
}

impl wit::Host for PluginState {
    async fn lstat(&mut self, path: Vec<u8>) -> wasmtime::Result<Result<Metadata, PluginError>> {
        Ok(self.fs().and_then(|fs| fs.lstat(&path)))
    }

    async fn list_dir(&mut self, path: Vec<u8>) -> wasmtime::Result<Result<Resource<Listing>, PluginError>> {
        let listing = match self.fs().and_then(|fs| fs.list_dir(&path)) {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.count_open() {
            return Ok(Err(e));
        }
        Ok(Ok(self.table.push(listing)?))
    }

    async fn open(&mut self, path: Vec<u8>) -> wasmtime::Result<Result<Resource<OpenFile>, PluginError>> {
        let file = match self.fs().and_then(|fs| fs.open(&path)) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.count_open() {
            return Ok(Err(e));
        }
        Ok(Ok(self.table.push(file)?))
    }
}

impl wit::HostListing for PluginState {
    async fn next(
        &mut self,
        this: Resource<Listing>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<wit::DirEntry>, PluginError>> {
        let listing = self.table.get_mut(&this)?;
        let batch = listing
            .entries
            .by_ref()
            .take(max.clamp(1, 65536) as usize)
            .map(|(name, meta)| wit::DirEntry { name, meta })
            .collect();
        Ok(Ok(batch))
    }

    async fn drop(&mut self, this: Resource<Listing>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.count_closed();
        Ok(())
    }
}

impl wit::HostFile for PluginState {
    async fn read(&mut self, this: Resource<OpenFile>, max: u32) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let open = self.table.get_mut(&this)?;
        // One byte more than expected, so the end of an unchanged file is seen
        // in the same call; a file that grew is read on as usual.
        let expected = usize::try_from(open.expected).unwrap_or(usize::MAX).saturating_add(1);
        let chunk = orchestrator_storage::fill_expecting(&mut open.file, max, expected)
            .map_err(|e| PluginError::Io(format!("reading a file: {e}")))?;
        open.expected = open.expected.saturating_sub(chunk.len() as u64);
        Ok(Ok(chunk))
    }

    async fn drop(&mut self, this: Resource<OpenFile>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.count_closed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn ctx(root: &Path) -> FsCtx {
        FsCtx::new(&[root.to_str().unwrap().to_string()]).unwrap()
    }

    fn bytes(p: &Path) -> Vec<u8> {
        p.as_os_str().as_bytes().to_vec()
    }

    #[test]
    fn paths_outside_the_grant_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("granted");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(tmp.path().join("secret"), "no").unwrap();
        symlink(tmp.path().join("secret"), root.join("abs-link")).unwrap();
        symlink("../secret", root.join("rel-link")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        symlink("../..", root.join("sub/up")).unwrap();
        let mut fs = ctx(&root);

        for p in [tmp.path().join("secret"), root.join("../secret"), PathBuf::from("/etc/passwd")] {
            assert!(matches!(fs.lstat(&bytes(&p)), Err(PluginError::PermissionDenied(_))), "{p:?}");
        }
        // Symlinks are reported, never followed.
        let meta = fs.lstat(&bytes(&root.join("abs-link"))).unwrap();
        assert_eq!(meta.kind, EntryKind::Symlink);
        assert_eq!(meta.symlink_target.unwrap(), bytes(&tmp.path().join("secret")));
        assert!(fs.open(&bytes(&root.join("abs-link"))).is_err());
        assert!(fs.open(&bytes(&root.join("rel-link"))).is_err());
        // A symlinked directory does not lead out either.
        assert!(matches!(fs.lstat(&bytes(&root.join("sub/up/secret"))), Err(PluginError::PermissionDenied(_))));
        assert!(fs.list_dir(&bytes(&root.join("sub/up"))).is_err());
    }

    #[test]
    fn listing_is_sorted_bytewise_with_exact_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for name in [&b"b"[..], b"a", b"\xffraw", b"with\nnewline", b"B"] {
            std::fs::write(root.join(OsStr::from_bytes(name)), name).unwrap();
        }
        let fs = ctx(root);
        let names: Vec<Vec<u8>> = fs.list_dir(&bytes(root)).unwrap().entries.map(|e| e.0).collect();
        assert_eq!(
            names,
            vec![b"B".to_vec(), b"a".to_vec(), b"b".to_vec(), b"with\nnewline".to_vec(), b"\xffraw".to_vec()]
        );
        let mut f = ctx(root).open(&bytes(&root.join(OsStr::from_bytes(b"\xffraw")))).unwrap();
        let mut s = Vec::new();
        f.file.read_to_end(&mut s).unwrap();
        assert_eq!(s, b"\xffraw");
    }

    #[test]
    fn two_grants_with_the_same_relative_names_stay_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, content) in [(&a, "from a"), (&b, "from b")] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("x"), content).unwrap();
        }
        let mut fs = FsCtx::new(&[a.to_str().unwrap().into(), b.to_str().unwrap().into()]).unwrap();
        for (dir, content) in [(&a, "from a"), (&b, "from b")] {
            let mut got = String::new();
            fs.open(&bytes(&dir.join("x"))).unwrap().file.read_to_string(&mut got).unwrap();
            assert_eq!(got, content);
        }
    }

    #[test]
    fn a_missing_granted_tree_is_not_found_not_denied() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("not-there");
        let fs = ctx(&missing);
        assert!(matches!(fs.lstat(&bytes(&missing)), Err(PluginError::NotFound(m)) if m.contains("no such file")));
        assert!(matches!(fs.lstat(b"/etc/passwd"), Err(PluginError::PermissionDenied(_))));
    }

    #[test]
    fn metadata_is_lstat() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o4751)).unwrap();
        let meta = ctx(tmp.path()).lstat(&bytes(&file)).unwrap();
        assert_eq!((meta.kind, meta.mode, meta.size), (EntryKind::File, 0o4751, 5));
        let root = ctx(tmp.path()).lstat(&bytes(tmp.path())).unwrap();
        assert_eq!(root.kind, EntryKind::Directory);
    }
}
