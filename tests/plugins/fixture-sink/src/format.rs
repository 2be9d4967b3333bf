//! The framed format: a magic, then records `E` (entry), `D` (a chunk of the
//! current entry's content), `X` (end of content, complete or not) and `Z`
//! (end of the set). Every field is length-prefixed, so any byte string
//! round-trips exactly.

use plugin_sdk::{Entry, EntryKind, Metadata, PluginError};
use std::io::{self, Read, Write};

/// First bytes of every set.
pub const MAGIC: &[u8] = b"ORCHFIX1";

/// One record read back.
#[derive(Debug)]
pub enum Record {
    /// An entry.
    Entry(Entry),
    /// Content of the current entry.
    Data(Vec<u8>),
    /// End of the current entry's content; whether it was complete.
    EndContent(bool),
    /// End of the set.
    End,
}

fn bytes(w: &mut dyn Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

fn kind_code(k: EntryKind) -> u8 {
    match k {
        EntryKind::File => 0,
        EntryKind::Directory => 1,
        EntryKind::Symlink => 2,
        EntryKind::Fifo => 3,
        EntryKind::CharDevice => 4,
        EntryKind::BlockDevice => 5,
        EntryKind::Socket => 6,
    }
}

/// Write an entry record.
pub fn write_entry(w: &mut dyn Write, e: &Entry) -> io::Result<()> {
    let m = &e.meta;
    w.write_all(b"E")?;
    bytes(w, &e.path)?;
    w.write_all(&[kind_code(m.kind)])?;
    for v in [m.mode, m.uid, m.gid, m.mtime_nsec] {
        w.write_all(&v.to_le_bytes())?;
    }
    w.write_all(&m.mtime.to_le_bytes())?;
    w.write_all(&m.size.to_le_bytes())?;
    match &m.symlink_target {
        Some(t) => {
            w.write_all(&[1])?;
            bytes(w, t)?;
        }
        None => w.write_all(&[0])?,
    }
    match m.device {
        Some((major, minor)) => {
            w.write_all(&[1])?;
            w.write_all(&major.to_le_bytes())?;
            w.write_all(&minor.to_le_bytes())?;
        }
        None => w.write_all(&[0])?,
    }
    w.write_all(&(e.attributes.len() as u32).to_le_bytes())?;
    for (k, v) in &e.attributes {
        bytes(w, k.as_bytes())?;
        bytes(w, v.as_bytes())?;
    }
    Ok(())
}

/// Write a chunk of content.
pub fn write_data(w: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    w.write_all(b"D")?;
    bytes(w, data)
}

/// Close the current entry's content.
pub fn write_end_content(w: &mut dyn Write, complete: bool) -> io::Result<()> {
    w.write_all(&[b'X', complete as u8])
}

/// Close the set.
pub fn write_end(w: &mut dyn Write) -> io::Result<()> {
    w.write_all(b"Z")
}

fn corrupt(e: io::Error) -> PluginError {
    PluginError::Corrupt(format!("truncated or unreadable set: {e}"))
}

fn u32_of(r: &mut dyn Read) -> Result<u32, PluginError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(corrupt)?;
    Ok(u32::from_le_bytes(b))
}

fn u8_of(r: &mut dyn Read) -> Result<u8, PluginError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(corrupt)?;
    Ok(b[0])
}

fn u64_of(r: &mut dyn Read) -> Result<u64, PluginError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(corrupt)?;
    Ok(u64::from_le_bytes(b))
}

fn bytes_of(r: &mut dyn Read) -> Result<Vec<u8>, PluginError> {
    let len = u32_of(r)? as usize;
    if len > 64 << 20 {
        return Err(PluginError::Corrupt(format!("a field of {len} bytes is implausible")));
    }
    let mut b = vec![0u8; len];
    r.read_exact(&mut b).map_err(corrupt)?;
    Ok(b)
}

fn string_of(r: &mut dyn Read) -> Result<String, PluginError> {
    String::from_utf8(bytes_of(r)?).map_err(|_| PluginError::Corrupt("attribute is not UTF-8".into()))
}

/// Check the magic at the start of a set.
pub fn read_magic(r: &mut dyn Read) -> Result<(), PluginError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(corrupt)?;
    if b != MAGIC {
        return Err(PluginError::Corrupt("not a fixture-sink set".into()));
    }
    Ok(())
}

/// Read the next record.
pub fn read_record(r: &mut dyn Read) -> Result<Record, PluginError> {
    match u8_of(r)? {
        b'E' => {
            let path = bytes_of(r)?;
            let kind = match u8_of(r)? {
                0 => EntryKind::File,
                1 => EntryKind::Directory,
                2 => EntryKind::Symlink,
                3 => EntryKind::Fifo,
                4 => EntryKind::CharDevice,
                5 => EntryKind::BlockDevice,
                6 => EntryKind::Socket,
                k => return Err(PluginError::Corrupt(format!("unknown kind {k}"))),
            };
            let (mode, uid, gid, mtime_nsec) = (u32_of(r)?, u32_of(r)?, u32_of(r)?, u32_of(r)?);
            let mtime = u64_of(r)? as i64;
            let size = u64_of(r)?;
            let symlink_target = if u8_of(r)? == 1 { Some(bytes_of(r)?) } else { None };
            let device = if u8_of(r)? == 1 { Some((u32_of(r)?, u32_of(r)?)) } else { None };
            let count = u32_of(r)?;
            let mut attributes = Vec::new();
            for _ in 0..count {
                attributes.push((string_of(r)?, string_of(r)?));
            }
            let meta = Metadata { kind, mode, uid, gid, mtime, mtime_nsec, size, symlink_target, device };
            Ok(Record::Entry(Entry { path, meta, attributes }))
        }
        b'D' => Ok(Record::Data(bytes_of(r)?)),
        b'X' => Ok(Record::EndContent(u8_of(r)? == 1)),
        b'Z' => Ok(Record::End),
        t => Err(PluginError::Corrupt(format!("unknown record type {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_exactly() {
        let entries = vec![
            Entry {
                path: b"odd\xff\nname".to_vec(),
                meta: Metadata {
                    kind: EntryKind::Symlink,
                    mode: 0o777,
                    uid: 1234,
                    gid: 5678,
                    mtime: -5,
                    mtime_nsec: 7,
                    size: 0,
                    symlink_target: Some(b"/t\xfe".to_vec()),
                    device: None,
                },
                attributes: vec![("imap.flags".into(), "\\Seen".into())],
            },
            Entry {
                path: "x".repeat(300).into_bytes(),
                meta: Metadata {
                    kind: EntryKind::CharDevice,
                    mode: 0o4755,
                    uid: 0,
                    gid: 0,
                    mtime: 1,
                    mtime_nsec: 0,
                    size: 0,
                    symlink_target: None,
                    device: Some((1, 3)),
                },
                attributes: vec![],
            },
        ];
        let mut buf = MAGIC.to_vec();
        for e in &entries {
            write_entry(&mut buf, e).unwrap();
            write_data(&mut buf, b"abc").unwrap();
            write_end_content(&mut buf, true).unwrap();
        }
        write_end(&mut buf).unwrap();
        let mut r = &buf[..];
        read_magic(&mut r).unwrap();
        for e in &entries {
            match read_record(&mut r).unwrap() {
                Record::Entry(got) => assert_eq!(&got, e),
                other => panic!("{other:?}"),
            }
            assert!(matches!(read_record(&mut r).unwrap(), Record::Data(d) if d == b"abc"));
            assert!(matches!(read_record(&mut r).unwrap(), Record::EndContent(true)));
        }
        assert!(matches!(read_record(&mut r).unwrap(), Record::End));
        assert!(read_record(&mut r).is_err());
    }
}
