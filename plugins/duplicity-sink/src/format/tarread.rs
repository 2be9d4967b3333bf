//! Reading tar entries one at a time from a stream (duplicity's volumes and
//! sigtars), keeping raw-byte names from GNU long-name records and PAX
//! `path`/`linkpath` records, the attributes and file size of our own
//! `ORCHESTRATOR.*` PAX records (see `tarentry`), and stopping at the first zero block so the
//! filler duplicity appends after a volume's footer is never read as data.

use super::tarentry::{ATTR_PREFIX, SIZE_KEY, normalize_attributes, unescape};
use std::io::{self, Read};

/// One entry's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub link_target: Option<Vec<u8>>,
    /// The raw type flag (`b'0'`, `b'5'`, …).
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub device: Option<(u32, u32)>,
    /// Named attributes from `ORCHESTRATOR.attr.*` records, sorted by name.
    pub attributes: Vec<(String, String)>,
    /// A regular file's size from an `ORCHESTRATOR.size` record (sigtars).
    pub file_size: Option<u64>,
}

/// What PAX records say about the entry that follows them.
#[derive(Default)]
struct Extended {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    attributes: Vec<(String, String)>,
    file_size: Option<u64>,
}

/// A tar stream read entry by entry.
pub struct TarReader<R> {
    inner: R,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    done: bool,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_all(r: &mut impl Read, n: u64) -> io::Result<Vec<u8>> {
    if n > 16 << 20 {
        return Err(bad("an extended header is implausibly large"));
    }
    let mut v = vec![0u8; n as usize];
    r.read_exact(&mut v)?;
    Ok(v)
}

/// Parse PAX records `"<len> <key>=<value>\n"` for path, linkpath and our
/// own records.
fn pax(records: &[u8], ext: &mut Extended) {
    let mut rest = records;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space]).ok().and_then(|l| l.parse::<usize>().ok()) else { return };
        // A record holds its length, a space, and at least its newline: a
        // damaged or hostile length ends the parse instead of slicing
        // outside the record.
        if len < space + 2 || len > rest.len() || rest[len - 1] != b'\n' {
            return;
        }
        let record = &rest[space + 1..len - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => ext.name = Some(value.to_vec()),
                b"linkpath" => ext.link = Some(value.to_vec()),
                _ if key == SIZE_KEY.as_bytes() => {
                    ext.file_size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                }
                _ => {
                    if let Some(name) = key.strip_prefix(ATTR_PREFIX.as_bytes()) {
                        ext.attributes.push((unescape(name), unescape(value)));
                    }
                }
            }
        }
        rest = &rest[len..];
    }
}

impl<R: Read> TarReader<R> {
    /// Read entries from `inner`.
    pub fn new(inner: R) -> Self {
        TarReader { inner, remaining: 0, pad: 0, done: false }
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let take = n.min(buf.len() as u64) as usize;
            self.inner.read_exact(&mut buf[..take])?;
            n -= take as u64;
        }
        Ok(())
    }

    /// The next entry's header, skipping what is left of the current one;
    /// `None` at the end of the archive.
    pub fn next_header(&mut self) -> io::Result<Option<Header>> {
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        let mut ext = Extended::default();
        loop {
            if self.done {
                return Ok(None);
            }
            let mut block = [0u8; 512];
            match self.inner.read_exact(&mut block) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let h = tar::Header::from_byte_slice(&block).clone();
            let size = h.entry_size()?;
            let pad = (512 - size % 512) % 512;
            let typeflag = block[156];
            match typeflag {
                b'L' | b'K' => {
                    let mut v = read_all(&mut self.inner, size)?;
                    self.skip(pad)?;
                    while v.last() == Some(&0) {
                        v.pop();
                    }
                    if typeflag == b'L' {
                        ext.name = Some(v)
                    } else {
                        ext.link = Some(v)
                    }
                    continue;
                }
                b'x' | b'g' => {
                    let v = read_all(&mut self.inner, size)?;
                    self.skip(pad)?;
                    if typeflag == b'x' {
                        pax(&v, &mut ext);
                    }
                    continue;
                }
                _ => {}
            }
            let name = ext.name.take().unwrap_or_else(|| h.path_bytes().into_owned());
            let link_target = ext.link.take().or_else(|| h.link_name_bytes().map(|l| l.into_owned()));
            let device = match typeflag {
                b'3' | b'4' => Some((h.device_major()?.unwrap_or(0), h.device_minor()?.unwrap_or(0))),
                _ => None,
            };
            self.remaining = size;
            self.pad = pad;
            return Ok(Some(Header {
                name,
                link_target: link_target.filter(|l| !l.is_empty()),
                typeflag: if typeflag == 0 { b'0' } else { typeflag },
                mode: h.mode()?,
                uid: h.uid()? as u32,
                gid: h.gid()? as u32,
                mtime: h.mtime()? as i64,
                size,
                device,
                attributes: normalize_attributes(std::mem::take(&mut ext.attributes)),
                file_size: ext.file_size,
            }));
        }
    }

    /// Up to `buf.len()` bytes of the current entry's data; 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let take = (buf.len() as u64).min(self.remaining) as usize;
        if take == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..take])?;
        if n == 0 {
            return Err(bad("the archive ends inside an entry"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tarentry::{TarKind, TarMeta, footer, padding, write_header};

    #[test]
    fn reads_what_the_writer_writes_and_stops_at_the_footer() {
        let long = "y".repeat(200).into_bytes();
        let mut t = Vec::new();
        let meta = TarMeta {
            kind: TarKind::Regular,
            mode: 0o4755,
            uid: 7,
            gid: 8,
            mtime: 99,
            link_target: None,
            device: None,
        };
        write_header(&mut t, &long, &meta, 3).unwrap();
        t.extend_from_slice(b"abc");
        t.extend(std::iter::repeat_n(0, padding(3)));
        let link = TarMeta { kind: TarKind::Symlink, link_target: Some(b"\xfftarget".to_vec()), ..meta.clone() };
        write_header(&mut t, b"snapshot/l", &link, 0).unwrap();
        let f = footer(t.len() as u64);
        t.extend_from_slice(&f);
        t.extend_from_slice(&[0xAB; 3000]); // duplicity's top-off filler
        let mut r = TarReader::new(&t[..]);
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.name.clone(), h.mode, h.uid, h.gid, h.mtime, h.size), (long, 0o4755, 7, 8, 99, 3));
        let mut buf = [0u8; 2];
        assert_eq!(r.read_data(&mut buf).unwrap(), 2);
        let h = r.next_header().unwrap().unwrap(); // skips the rest of "abc"
        assert_eq!((h.typeflag, h.link_target.as_deref()), (b'2', Some(&b"\xfftarget"[..])));
        assert!(r.next_header().unwrap().is_none());
        assert!(r.next_header().unwrap().is_none());
    }

    #[test]
    fn attributes_and_file_sizes_read_back() {
        use crate::format::tarentry::{pax_records, write_header_pax};
        let meta =
            TarMeta { kind: TarKind::Regular, mode: 0o644, uid: 0, gid: 0, mtime: 1, link_target: None, device: None };
        let attrs = vec![
            ("imap.flags".to_string(), "\\Seen \\Answered".to_string()),
            ("maildir.info".to_string(), "2,RS".to_string()),
            ("wéird=name".to_string(), "100%\n".to_string()),
        ];
        let long = "z".repeat(150).into_bytes();
        let mut t = Vec::new();
        write_header_pax(&mut t, &long, &meta, 3, &pax_records(&attrs, Some(1234))).unwrap();
        t.extend_from_slice(b"abc");
        t.extend(std::iter::repeat_n(0, padding(3)));
        write_header(&mut t, b"snapshot/plain", &meta, 0).unwrap();
        t.extend(footer(t.len() as u64));
        let mut r = TarReader::new(&t[..]);
        let h = r.next_header().unwrap().unwrap();
        let mut sorted = attrs.clone();
        sorted.sort();
        assert_eq!((h.name.clone(), h.size, h.attributes.clone(), h.file_size), (long, 3, sorted, Some(1234)));
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.name, h.attributes, h.file_size), (b"snapshot/plain".to_vec(), vec![], None));
    }

    #[test]
    fn damaged_pax_records_are_ignored_not_a_panic() {
        for records in [&b"1 x"[..], b"2 x", b"3 x\n", b"0 x=y\n", b"99 path=x\n", b"7 path=x", b"x path=y\n", b" "] {
            let mut ext = Extended::default();
            pax(records, &mut ext);
            assert_eq!(ext.name, None, "{:?}", String::from_utf8_lossy(records));
        }
        // A well-formed one still is.
        let mut ext = Extended::default();
        pax(b"12 path=abc\n", &mut ext);
        assert_eq!(ext.name.as_deref(), Some(&b"abc"[..]));
    }

    #[test]
    fn pax_paths_are_honoured() {
        let mut records = Vec::new();
        for (k, v) in
            [("path", &b"snapshot/\xffraw"[..]), ("hdrcharset", b"BINARY"), ("ORCHESTRATOR.attr.maildir.info", b"2,S")]
        {
            let body_len = k.len() + v.len() + 3;
            let mut len = body_len + body_len.to_string().len();
            if len.to_string().len() != body_len.to_string().len() {
                len += 1;
            }
            records.extend_from_slice(format!("{len} {k}=").as_bytes());
            records.extend_from_slice(v);
            records.push(b'\n');
        }
        let mut t = Vec::new();
        let mut x = tar::Header::new_ustar();
        x.set_path("././@PaxHeader").unwrap();
        x.set_size(records.len() as u64);
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_cksum();
        t.extend_from_slice(x.as_bytes());
        t.extend_from_slice(&records);
        t.extend(std::iter::repeat_n(0, padding(records.len() as u64)));
        let meta =
            TarMeta { kind: TarKind::Regular, mode: 0o644, uid: 0, gid: 0, mtime: 1, link_target: None, device: None };
        write_header(&mut t, b"snapshot/?raw", &meta, 0).unwrap();
        t.extend_from_slice(&footer(t.len() as u64));
        let h = TarReader::new(&t[..]).next_header().unwrap().unwrap();
        assert_eq!(h.name, b"snapshot/\xffraw");
        assert_eq!(h.attributes, [("maildir.info".to_string(), "2,S".to_string())]);
    }
}
