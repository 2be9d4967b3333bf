//! Tar headers of difftar and sigtar entries. Entry names carry duplicity's
//! prefixes (`snapshot/`, `diff/`, `deleted/`, `signature/`,
//! `multivol_snapshot/<path>/<n>`, `multivol_diff/<path>/<n>`); names and link
//! targets longer than 100 bytes or not ASCII go in GNU long-name records,
//! which both duplicity versions read (spec §3.1). Owner names are left empty
//! so a restore maps numeric ids.
//!
//! An entry's named attributes go in a PAX extended header (`x`) before its
//! other headers, one record `ORCHESTRATOR.attr.<name>=<value>` per attribute
//! (sorted by name). Names keep ASCII letters, digits, `.`, `-` and `_`; every
//! other byte is written `%XX`. Values are UTF-8 with `%`, newline and NUL
//! written `%XX`, so tools that split PAX records at newlines (the `tar`
//! crate) read them too. duplicity and other tar readers ignore these vendor
//! records. An entry without attributes gets no extended header, so its bytes
//! are what they were before attributes existed.

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

/// Prefix of the PAX keywords that hold attributes.
pub const ATTR_PREFIX: &str = "ORCHESTRATOR.attr.";
/// PAX keyword of a regular file's size in a sigtar `signature/` entry, whose
/// tar size is the signature's (written only for entries with attributes).
pub const SIZE_KEY: &str = "ORCHESTRATOR.size";

/// Attributes as they are stored and compared: sorted by name, each name
/// once (the last value given wins).
pub fn normalize_attributes(mut attributes: Vec<(String, String)>) -> Vec<(String, String)> {
    // A stable sort keeps duplicates in their order; the last one is kept.
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, String)> = Vec::with_capacity(attributes.len());
    for (name, value) in attributes {
        match out.last_mut() {
            Some(last) if last.0 == name => last.1 = value,
            _ => out.push((name, value)),
        }
    }
    out
}

fn escape(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An attribute name as it goes into a PAX keyword.
pub fn escape_name(name: &str) -> String {
    escape(name, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// An attribute value as it goes into a PAX record.
pub fn escape_value(value: &str) -> String {
    if !value.bytes().any(|b| matches!(b, b'%' | b'\n' | 0)) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_name`] and [`escape_value`]; never fails: a `%`
/// not followed by two hex digits stays as it is, bytes that are not UTF-8
/// become U+FFFD.
pub fn unescape(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = (s[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One PAX record `"<len> <keyword>=<value>\n"`; `len` counts the whole
/// record, its own digits too.
fn pax_record(out: &mut Vec<u8>, keyword: &str, value: &str) {
    let body = keyword.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {keyword}={value}\n").as_bytes());
}

/// The PAX records of an entry's attributes (normalized, see
/// [`normalize_attributes`]), and of a file size when `file_size` is given;
/// empty when both are absent.
pub fn pax_records(attributes: &[(String, String)], file_size: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in attributes {
        pax_record(&mut out, &format!("{ATTR_PREFIX}{}", escape_name(name)), &escape_value(value));
    }
    if let Some(size) = file_size {
        pax_record(&mut out, SIZE_KEY, &size.to_string());
    }
    out
}

/// A PAX extended header (`x`) holding `records`.
fn pax_header(out: &mut dyn Write, records: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_path("././@PaxHeader")?;
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(records.len() as u64);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    out.write_all(records)?;
    out.write_all(&vec![0u8; padding(records.len() as u64)])
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
    write_header_pax(out, name, meta, size, &[])
}

/// [`write_header`] with PAX records (from [`pax_records`]) in an extended
/// header first; none when `pax` is empty.
pub fn write_header_pax(out: &mut dyn Write, name: &[u8], meta: &TarMeta, size: u64, pax: &[u8]) -> io::Result<()> {
    if !pax.is_empty() {
        pax_header(out, pax)?;
    }
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
    fn attribute_names_and_values_are_escaped_for_pax() {
        assert_eq!(escape_name("imap.flags"), "imap.flags");
        assert_eq!(escape_name("maildir.info"), "maildir.info");
        assert_eq!(escape_name("a=b c/ü%\n"), "a%3Db%20c%2F%C3%BC%25%0A");
        assert_eq!(escape_value("\\Seen \\Answered $Label1"), "\\Seen \\Answered $Label1");
        assert_eq!(escape_value("50% ü\nnext\0"), "50%25 ü%0Anext%00");
        for s in ["a=b c/ü%\n", "", "%", "%zz", "plain"] {
            assert_eq!(unescape(escape_name(s).as_bytes()), s);
            assert_eq!(unescape(escape_value(s).as_bytes()), s);
        }
        // A stray `%` is kept, bad UTF-8 is replaced: reading never fails.
        assert_eq!(unescape(b"100%"), "100%");
        assert_eq!(unescape(b"%FF"), "\u{fffd}");
        let n =
            normalize_attributes(vec![("b".into(), "1".into()), ("a".into(), "x".into()), ("b".into(), "2".into())]);
        assert_eq!(n, [("a".to_string(), "x".to_string()), ("b".to_string(), "2".to_string())]);
        assert!(pax_records(&[], None).is_empty());
    }

    #[test]
    fn other_tar_readers_see_the_attribute_records() {
        let attrs = vec![
            ("imap.flags".to_string(), "\\Seen $Label1".to_string()),
            ("odd name=".to_string(), "line\nbreak".to_string()),
        ];
        let meta =
            TarMeta { kind: TarKind::Regular, mode: 0o600, uid: 1, gid: 2, mtime: 3, link_target: None, device: None };
        let name =
            entry_name(Prefix::Snapshot, "ünï/a name longer than a hundred bytes ".repeat(4).as_bytes(), false, false);
        let mut t = Vec::new();
        write_header_pax(&mut t, &name, &meta, 4, &pax_records(&attrs, Some(4))).unwrap();
        t.extend_from_slice(b"data");
        t.extend(std::iter::repeat_n(0, padding(4)));
        t.extend(footer(t.len() as u64));
        let mut archive = tar::Archive::new(&t[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*entry.path_bytes(), &name[..]);
        let records: Vec<(String, String)> = entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.key().unwrap().to_string(), r.value().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            records,
            [
                ("ORCHESTRATOR.attr.imap.flags".to_string(), "\\Seen $Label1".to_string()),
                ("ORCHESTRATOR.attr.odd%20name%3D".to_string(), "line%0Abreak".to_string()),
                ("ORCHESTRATOR.size".to_string(), "4".to_string()),
            ]
        );
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        assert_eq!(data, b"data");
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
