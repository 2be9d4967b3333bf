//! Tar headers of difftar and sigtar entries. Entry names carry duplicity's
//! prefixes (`snapshot/`, `diff/`, `deleted/`, `signature/`,
//! `multivol_snapshot/<path>/<n>`, `multivol_diff/<path>/<n>`); names and link
//! targets longer than 100 bytes or not ASCII go in GNU long-name records,
//! which both duplicity versions read (spec §3.1). Owner names are left empty
//! so a restore maps numeric ids.

use std::io::{self, Write};

/// The tar type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    /// `'0'`
    Regular,
    /// `'5'`
    Directory,
    /// `'2'`
    Symlink,
    /// `'6'`
    Fifo,
    /// `'3'`
    CharDevice,
    /// `'4'`
    BlockDevice,
}

/// What a header says about an entry besides its name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMeta {
    pub kind: TarKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub link_target: Option<Vec<u8>>,
    pub device: Option<(u32, u32)>,
}

impl TarMeta {
    /// The header of a `deleted/` entry: only its name matters.
    pub fn deleted() -> TarMeta {
        TarMeta { kind: TarKind::Regular, mode: 0, uid: 0, gid: 0, mtime: 0, link_target: None, device: None }
    }
}

/// How an entry's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// The whole entry.
    Snapshot,
    /// An rsync delta against the previous version.
    Diff,
    /// The path is gone.
    Deleted,
    /// A librsync signature (sigtars only).
    Signature,
    /// Chunk `n` (from 1) of a snapshot's data.
    MultivolSnapshot(u64),
    /// Chunk `n` of a delta.
    MultivolDiff(u64),
}

/// The entry name for `path` (relative, `""` for the root). Directories get a
/// trailing `/`; the root is `snapshot/./` in difftars and `snapshot/` in
/// sigtars (`sigtar_root`).
pub fn entry_name(prefix: Prefix, path: &[u8], is_dir: bool, sigtar_root: bool) -> Vec<u8> {
    let (head, chunk) = match prefix {
        Prefix::Snapshot => ("snapshot", None),
        Prefix::Diff => ("diff", None),
        Prefix::Deleted => ("deleted", None),
        Prefix::Signature => ("signature", None),
        Prefix::MultivolSnapshot(n) => ("multivol_snapshot", Some(n)),
        Prefix::MultivolDiff(n) => ("multivol_diff", Some(n)),
    };
    let mut name = head.as_bytes().to_vec();
    name.push(b'/');
    if path.is_empty() {
        if !sigtar_root {
            name.extend_from_slice(b"./");
        }
        return name;
    }
    name.extend_from_slice(path);
    if let Some(n) = chunk {
        name.extend_from_slice(format!("/{n}").as_bytes());
    } else if is_dir {
        name.push(b'/');
    }
    name
}

fn needs_long(bytes: &[u8]) -> bool {
    bytes.len() > 100 || !bytes.is_ascii()
}

/// A GNU `././@LongLink` record (`L` for names, `K` for link targets).
fn long_record(out: &mut dyn Write, kind: u8, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_path("././@LongLink")?;
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    out.write_all(value)?;
    out.write_all(&[0])?;
    out.write_all(&vec![0u8; padding(value.len() as u64 + 1)])
}

/// Zero bytes that follow `size` bytes of data to fill the last block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Write the header(s) of an entry whose data is `size` bytes long. The data
/// and then [`padding`] zero bytes must follow.
pub fn write_header(out: &mut dyn Write, name: &[u8], meta: &TarMeta, size: u64) -> io::Result<()> {
    if needs_long(name) {
        long_record(out, b'L', name)?;
    }
    if let Some(target) = meta.link_target.as_deref().filter(|t| needs_long(t)) {
        long_record(out, b'K', target)?;
    }
    let mut h = tar::Header::new_gnu();
    // The short fields hold a lossy copy when a long record carries the truth.
    let short_name: Vec<u8> = name.iter().take(100).map(|&b| if b.is_ascii() { b } else { b'?' }).collect();
    h.as_old_mut().name[..short_name.len()].copy_from_slice(&short_name);
    if let Some(target) = &meta.link_target {
        let short: Vec<u8> = target.iter().take(100).map(|&b| if b.is_ascii() { b } else { b'?' }).collect();
        h.as_old_mut().linkname[..short.len()].copy_from_slice(&short);
    }
    h.set_mode(meta.mode & 0o7777);
    h.set_uid(u64::from(meta.uid));
    h.set_gid(u64::from(meta.gid));
    h.set_mtime(meta.mtime.max(0) as u64);
    h.set_size(size);
    h.set_entry_type(match meta.kind {
        TarKind::Regular => tar::EntryType::Regular,
        TarKind::Directory => tar::EntryType::Directory,
        TarKind::Symlink => tar::EntryType::Symlink,
        TarKind::Fifo => tar::EntryType::Fifo,
        TarKind::CharDevice => tar::EntryType::Char,
        TarKind::BlockDevice => tar::EntryType::Block,
    });
    if let Some((major, minor)) = meta.device {
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
    }
    h.set_cksum();
    out.write_all(h.as_bytes())
}

/// The end of a tar: two zero blocks, then zeros up to a multiple of 10240
/// bytes as duplicity pads (`written` is what the tar holds so far).
pub fn footer(written: u64) -> Vec<u8> {
    let with_end = written + 1024;
    vec![0u8; 1024 + ((10240 - with_end % 10240) % 10240) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_duplicitys_prefixes() {
        let n = |p, path: &[u8], dir, sig| String::from_utf8(entry_name(p, path, dir, sig)).unwrap();
        assert_eq!(n(Prefix::Snapshot, b"", true, false), "snapshot/./");
        assert_eq!(n(Prefix::Snapshot, b"", true, true), "snapshot/");
        assert_eq!(n(Prefix::Snapshot, b"sub/deeper", true, false), "snapshot/sub/deeper/");
        assert_eq!(n(Prefix::Diff, b"a.txt", false, false), "diff/a.txt");
        assert_eq!(n(Prefix::Deleted, b"gone", false, false), "deleted/gone");
        assert_eq!(n(Prefix::Signature, b"big.bin", false, true), "signature/big.bin");
        assert_eq!(n(Prefix::MultivolSnapshot(39), b"big.bin", false, false), "multivol_snapshot/big.bin/39");
        assert_eq!(n(Prefix::MultivolDiff(2), b"d/big", false, false), "multivol_diff/d/big/2");
    }

    #[test]
    fn headers_read_back_exactly_with_tar() {
        let long = "x".repeat(150).into_bytes();
        let cases: Vec<(Vec<u8>, TarMeta, Vec<u8>)> = vec![
            (
                b"snapshot/./".to_vec(),
                TarMeta {
                    kind: TarKind::Directory,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 1_700_000_000,
                    link_target: None,
                    device: None,
                },
                vec![],
            ),
            (
                entry_name(Prefix::Snapshot, b"bad\xffname \n", false, false),
                TarMeta {
                    kind: TarKind::Regular,
                    mode: 0o4755,
                    uid: 1234,
                    gid: 5678,
                    mtime: 5,
                    link_target: None,
                    device: None,
                },
                b"data".to_vec(),
            ),
            (
                entry_name(Prefix::Snapshot, &long, false, false),
                TarMeta {
                    kind: TarKind::Symlink,
                    mode: 0o777,
                    uid: 65534,
                    gid: 65534,
                    mtime: 7,
                    link_target: Some(long.clone()),
                    device: None,
                },
                vec![],
            ),
            (
                entry_name(Prefix::Snapshot, "ünï©ode".as_bytes(), false, false),
                TarMeta {
                    kind: TarKind::Fifo,
                    mode: 0o640,
                    uid: 1,
                    gid: 2,
                    mtime: -3,
                    link_target: None,
                    device: None,
                },
                vec![],
            ),
            (
                b"snapshot/null".to_vec(),
                TarMeta {
                    kind: TarKind::CharDevice,
                    mode: 0o666,
                    uid: 0,
                    gid: 0,
                    mtime: 9,
                    link_target: None,
                    device: Some((1, 3)),
                },
                vec![],
            ),
            (entry_name(Prefix::Deleted, b"gone", false, false), TarMeta::deleted(), vec![]),
        ];
        let mut tarball = Vec::new();
        for (name, meta, data) in &cases {
            write_header(&mut tarball, name, meta, data.len() as u64).unwrap();
            tarball.extend_from_slice(data);
            tarball.extend(std::iter::repeat_n(0u8, padding(data.len() as u64)));
        }
        let footer = footer(tarball.len() as u64);
        tarball.extend_from_slice(&footer);
        assert_eq!(tarball.len() % 10240, 0);
        tarball.extend_from_slice(b"top-off garbage after the footer is ignored");

        let mut archive = tar::Archive::new(&tarball[..]);
        let mut read = 0;
        for (entry, (name, meta, data)) in archive.entries().unwrap().zip(&cases) {
            let mut entry = entry.unwrap();
            assert_eq!(&*entry.path_bytes(), &name[..]);
            let h = entry.header().clone();
            assert_eq!(h.mode().unwrap(), meta.mode);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (u64::from(meta.uid), u64::from(meta.gid)));
            assert_eq!(h.mtime().unwrap(), meta.mtime.max(0) as u64);
            assert_eq!(entry.link_name_bytes().map(|l| l.into_owned()), meta.link_target);
            if let Some((major, minor)) = meta.device {
                assert_eq!((h.device_major().unwrap(), h.device_minor().unwrap()), (Some(major), Some(minor)));
            }
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut got).unwrap();
            assert_eq!(&got, data);
            read += 1;
        }
        assert_eq!(read, cases.len());
    }
}
