use super::*;
use orchestrator_sftp::{ErrorKind, FileKind, Meta};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Instant, SystemTime};

/// What `std::fs::symlink_metadata` says, in this crate's terms.
fn local_meta(path: &Path) -> Meta {
    let m = fs::symlink_metadata(path).unwrap();
    let t = m.file_type();
    let kind = if t.is_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if std::os::unix::fs::FileTypeExt::is_fifo(&t) {
        FileKind::Fifo
    } else {
        FileKind::Other
    };
    Meta { kind, mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), mtime: m.mtime(), size: m.size() }
}

/// A tree with what a real source holds: odd names, links, a fifo, an empty
/// directory, private files.
fn make_tree(root: &Path) -> Vec<Vec<u8>> {
    fs::create_dir(root).unwrap();
    fs::write(root.join("plain.txt"), "hello\n").unwrap();
    let latin1 = OsStr::from_bytes(b"caf\xe9 \xff name");
    fs::write(root.join(latin1), "not utf-8\n").unwrap();
    std::os::unix::fs::symlink("plain.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let status = std::process::Command::new("mkfifo").arg(root.join("pipe")).status().unwrap();
    assert!(status.success(), "mkfifo failed");
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    fs::write(root.join("sub/deep.bin"), [0u8; 4096]).unwrap();
    let old = fs::File::options().write(true).create_new(true).open(root.join("old")).unwrap();
    old.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
    fs::write(root.join("private"), "root only\n").unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("setgid"), "").unwrap();
    fs::set_permissions(root.join("setgid"), fs::Permissions::from_mode(0o2750)).unwrap();
    if is_root() {
        fs::write(root.join("someone-elses"), "owned by 1234:5678\n").unwrap();
        fs::set_permissions(root.join("someone-elses"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(root.join("someone-elses"), Some(1234), Some(5678)).unwrap();
    }
    let mut names: Vec<Vec<u8>> =
        fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    names.sort();
    names
}

#[test]
fn read_dir_matches_local_metadata() {
    let Some(sshd) = Sshd::start() else { return };
    let root = sshd.data_dir().join("tree");
    let names = make_tree(&root);
    let sftp = connect(&sshd);
    let entries = sftp.read_dir(&root).unwrap();
    let got: Vec<&[u8]> = entries.iter().map(|(n, _)| n.as_slice()).collect();
    assert_eq!(got, names.iter().map(Vec::as_slice).collect::<Vec<_>>(), "bytewise order, no . or ..");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    for (name, meta) in &entries {
        let path = root.join(OsStr::from_bytes(name));
        assert_eq!(meta, &local_meta(&path), "{}", path.display());
        assert_eq!(&sftp.lstat(&path).unwrap(), meta, "lstat of {}", path.display());
    }
    let kind = |n: &str| entries.iter().find(|(name, _)| name == n.as_bytes()).unwrap().1.kind;
    assert_eq!(kind("link"), FileKind::Symlink);
    assert_eq!(kind("dangling"), FileKind::Symlink);
    assert_eq!(kind("pipe"), FileKind::Fifo);
    assert_eq!(kind("empty"), FileKind::Dir);
    assert_eq!(kind("plain.txt"), FileKind::File);
    let meta = |n: &str| entries.iter().find(|(name, _)| name == n.as_bytes()).unwrap().1.clone();
    assert_eq!(meta("old").mtime, 1_000_000_000);
    assert_eq!(meta("private").mode, 0o600);
    assert_eq!(meta("setgid").mode, 0o2750);
    if is_root() {
        assert_eq!((meta("someone-elses").uid, meta("someone-elses").gid), (1234, 5678));
    } else {
        eprintln!("not root: ownership of other users' files not checked");
    }

    assert!(sftp.read_dir(root.join("empty")).unwrap().is_empty());
    assert_eq!(sftp.read_link(root.join("link")).unwrap(), Path::new("plain.txt"));
    assert_eq!(sftp.read_link(root.join("dangling")).unwrap(), Path::new("/nonexistent/target"));
    let mut text = String::new();
    sftp.open(root.join("private")).unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(text, "root only\n");
    if is_root() {
        text.clear();
        sftp.open(root.join("someone-elses")).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "owned by 1234:5678\n", "root reads a 0600 file of another user");
    }
    let mut bytes = Vec::new();
    sftp.open(root.join(OsStr::from_bytes(b"caf\xe9 \xff name"))).unwrap().read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, b"not utf-8\n");
}

#[test]
fn missing_paths_are_not_found() {
    let Some(sshd) = Sshd::start() else { return };
    let sftp = connect(&sshd);
    let missing = sshd.data_dir().join("missing");
    for e in [
        sftp.lstat(&missing).unwrap_err(),
        sftp.read_dir(&missing).unwrap_err(),
        sftp.open(&missing).map(|_| ()).unwrap_err(),
        sftp.read_link(&missing).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("{}@127.0.0.1:{}: ", sshd.user(), sshd.port())), "{text}");
        assert!(text.contains(&missing.display().to_string()), "{text}");
    }
}

#[test]
fn unreadable_file_is_permission_denied_for_non_root() {
    if is_root() {
        eprintln!("running as root, which reads any file: see write::read_only_server_denies_writes");
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let path = sshd.data_dir().join("locked");
    fs::write(&path, "x").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let e = connect(&sshd).open(&path).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

/// 200 MB of incompressible bytes, quickly (xorshift).
fn write_big_file(path: &Path, size: usize) -> Vec<u8> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        left -= n;
    }
    file.flush().unwrap();
    hasher.finalize().to_vec()
}

#[test]
fn big_file_streams_intact() {
    let Some(sshd) = Sshd::start() else { return };
    const SIZE: usize = 200 * 1000 * 1000 + 12345;
    let path = sshd.data_dir().join("big.bin");
    let expected = write_big_file(&path, SIZE);
    let sftp = connect(&sshd);
    let mut reader = sftp.open(&path).unwrap();
    // Reads of 64 KiB, as a plugin's chunks would be: the reader's own buffer
    // keeps libssh2's requests large.
    let mut buf = vec![0u8; 64 << 10];
    let mut hasher = Sha256::new();
    let (mut total, mut reading) = (0usize, Duration::ZERO);
    let wall = Instant::now();
    loop {
        let start = Instant::now();
        let n = reader.read(&mut buf).unwrap();
        reading += start.elapsed();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
    }
    let wall = wall.elapsed();
    assert_eq!(total, SIZE);
    assert_eq!(hasher.finalize().to_vec(), expected, "sha256 of the streamed content");
    let mb_s = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
    eprintln!(
        "SFTP read throughput on loopback: {SIZE} bytes, {:.0} MB/s in read() ({reading:.2?}), \
         {:.0} MB/s with SHA-256 on the same thread ({wall:.2?})",
        mb_s(reading),
        mb_s(wall)
    );
}
