//! The set format: one tar stream per backup, written and read here as plain
//! Rust over [`std::io::Write`] and [`std::io::BufRead`], with the `tar`
//! crate's [`Header`] for the 512-byte header blocks.
//!
//! Layout of one entry:
//!
//! * an optional PAX extended header (`x`) with `ORCHESTRATOR.*` records for
//!   what a tar header cannot hold: `attr.<name>` (one per attribute, in
//!   order), `mtime_nsec`, `mtime` (negative times), `size` (when the
//!   metadata's size differs from the stored data, e.g. a directory), `kind`
//!   (`socket`, which tar has no type for), `mode`, `devmajor`/`devminor`
//!   (when too large for the header's octal fields);
//! * an optional GNU long name (`L`) and long link (`K`) record holding the raw
//!   bytes of a path or symlink target longer than 100 bytes, not UTF-8, or
//!   containing NUL;
//! * a GNU header named `root/` (the root) or `root/<path>`, directories with
//!   a trailing `/`, and for a regular file its content padded to 512 bytes.
//!
//! A file whose content could not be read whole is followed by a marker: a PAX
//! header with `ORCHESTRATOR.incomplete=1` and `ORCHESTRATOR.reason=…`, then a
//! header of the vendor type `I` named `././@Incomplete`. The marker comes
//! after the data because the header is already out when the problem shows
//! (content is streamed, never held whole); readers report it.
//!
//! PAX record keys and values escape `%`, newline and (in keys) `=` as `%XX`,
//! so the `tar` crate, which splits records at newlines, reads them too.

use plugin_sdk::{Entry, EntryKind, Metadata, PluginError};
use std::io::{self, BufRead, Read, Write};
use tar::{EntryType, Header};

const BLOCK: u64 = 512;
/// Stored path of the root, and prefix of every other stored path.
pub const ROOT: &[u8] = b"root/";
/// Prefix of this format's PAX keys.
const PAX: &str = "ORCHESTRATOR.";
/// Prefix of the PAX keys holding attributes.
const ATTR: &str = "ORCHESTRATOR.attr.";
/// Vendor type of the marker that follows an incomplete file.
const INCOMPLETE_TYPE: u8 = b'I';
const INCOMPLETE_NAME: &[u8] = b"././@Incomplete";
/// Largest value an 8-byte octal header field holds (7 digits and a NUL).
const OCTAL8_MAX: u32 = 0o7777777;
/// Extension records (PAX, long names) larger than this are not believed.
const MAX_EXTENSION: u64 = 64 << 20;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

fn corrupt(message: impl Into<String>) -> PluginError {
    PluginError::Corrupt(message.into())
}

fn io_err(e: io::Error) -> PluginError {
    PluginError::from_io(e)
}

/// Show a byte path to people.
pub fn show(path: &[u8]) -> String {
    if path.is_empty() { "the root".into() } else { format!("`{}`", String::from_utf8_lossy(path)) }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn write_zeros(out: &mut dyn Write, mut n: u64) -> Result<(), PluginError> {
    while n > 0 {
        let step = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..step]).map_err(io_err)?;
        n -= step as u64;
    }
    Ok(())
}

// ---------------------------------------------------------------- escaping

fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '=' if is_key => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(b: &[u8]) -> Result<String, PluginError> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| corrupt("a PAX record has a bad %-escape"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| corrupt("a PAX record is not UTF-8"))
}

// ---------------------------------------------------------------- writing

/// One `len key=value\n` record; `len` counts the whole record, itself too.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

fn needs_long(bytes: &[u8]) -> bool {
    bytes.len() > 100 || bytes.contains(&0) || std::str::from_utf8(bytes).is_err()
}

/// An extension record (`x`, `L`, `K`) and its data.
fn write_extension(out: &mut dyn Write, ty: EntryType, name: &[u8], data: &[u8]) -> Result<(), PluginError> {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.write_all(h.as_bytes()).map_err(io_err)?;
    out.write_all(data).map_err(io_err)?;
    write_zeros(out, padding(data.len() as u64))
}

/// The stored path of an entry: `root/`, `root/<path>`, directories with a
/// trailing `/`.
pub fn stored_path(entry: &Entry) -> Vec<u8> {
    let mut p = ROOT.to_vec();
    p.extend_from_slice(&entry.path);
    if entry.meta.kind == EntryKind::Directory && !entry.path.is_empty() {
        p.push(b'/');
    }
    p
}

/// Write the headers of `entry` (PAX records, long name and link, the header
/// itself) for stored data of `data_size` bytes.
fn write_headers(out: &mut dyn Write, entry: &Entry, data_size: u64) -> Result<(), PluginError> {
    let m = &entry.meta;
    let mut pax = Vec::new();
    let mut record = |key: &str, value: &str| pax_record(&mut pax, &format!("{PAX}{key}"), value);
    if m.mtime_nsec != 0 {
        record("mtime_nsec", &m.mtime_nsec.to_string());
    }
    if m.mtime < 0 {
        record("mtime", &m.mtime.to_string());
    }
    if m.size != data_size {
        record("size", &m.size.to_string());
    }
    if m.kind == EntryKind::Socket {
        record("kind", "socket");
    }
    if m.mode > OCTAL8_MAX {
        record("mode", &m.mode.to_string());
    }
    if let Some((major, minor)) = m.device {
        if major > OCTAL8_MAX {
            record("devmajor", &major.to_string());
        }
        if minor > OCTAL8_MAX {
            record("devminor", &minor.to_string());
        }
    }
    for (name, value) in &entry.attributes {
        pax_record(&mut pax, &format!("{ATTR}{}", escape(name, true)), &escape(value, false));
    }
    if !pax.is_empty() {
        write_extension(out, EntryType::XHeader, b"././@PaxHeader", &pax)?;
    }

    let path = stored_path(entry);
    if needs_long(&path) {
        let mut data = path.clone();
        data.push(0);
        write_extension(out, EntryType::GNULongName, b"././@LongLink", &data)?;
    }
    let target = match (m.kind, &m.symlink_target) {
        (EntryKind::Symlink, Some(t)) => t.as_slice(),
        _ => &[],
    };
    if needs_long(target) {
        let mut data = target.to_vec();
        data.push(0);
        write_extension(out, EntryType::GNULongLink, b"././@LongLink", &data)?;
    }

    let mut h = Header::new_gnu();
    let short = |b: &[u8]| -> Vec<u8> { b.iter().copied().take_while(|&c| c != 0).take(100).collect() };
    let name = short(&path);
    h.as_old_mut().name[..name.len()].copy_from_slice(&name);
    if !needs_long(target) {
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
    } else {
        let link = short(target);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(&link);
    }
    h.set_entry_type(match m.kind {
        EntryKind::File | EntryKind::Socket => EntryType::Regular,
        EntryKind::Directory => EntryType::Directory,
        EntryKind::Symlink => EntryType::Symlink,
        EntryKind::Fifo => EntryType::Fifo,
        EntryKind::CharDevice => EntryType::Char,
        EntryKind::BlockDevice => EntryType::Block,
    });
    h.set_mode(m.mode.min(OCTAL8_MAX));
    h.set_uid(m.uid.into());
    h.set_gid(m.gid.into());
    h.set_mtime(m.mtime.max(0) as u64);
    h.set_size(data_size);
    if let Some((major, minor)) = m.device {
        h.set_device_major(major.min(OCTAL8_MAX)).map_err(io_err)?;
        h.set_device_minor(minor.min(OCTAL8_MAX)).map_err(io_err)?;
    }
    h.set_cksum();
    out.write_all(h.as_bytes()).map_err(io_err)
}

fn write_incomplete_marker(out: &mut dyn Write, reason: &str) -> Result<(), PluginError> {
    let mut pax = Vec::new();
    pax_record(&mut pax, &format!("{PAX}incomplete"), "1");
    pax_record(&mut pax, &format!("{PAX}reason"), &escape(reason, false));
    write_extension(out, EntryType::XHeader, b"././@PaxHeader", &pax)?;
    write_extension(out, EntryType::new(INCOMPLETE_TYPE), INCOMPLETE_NAME, &[])
}

/// A regular file whose content is arriving.
struct Pending {
    entry: Entry,
    /// Bytes the header announces (the metadata's size).
    announced: u64,
    /// Bytes that arrived (excess included).
    received: u64,
    header_written: bool,
}

/// Writes one set: entries in order, content streamed through.
pub struct TarWriter<W: Write> {
    out: W,
    pending: Option<Pending>,
    entries: u64,
    skip_content: bool,
}

impl<W: Write> TarWriter<W> {
    /// A writer into `out`. With `skip_content`, regular files are stored
    /// with their metadata only and their content is never asked for.
    pub fn new(out: W, skip_content: bool) -> TarWriter<W> {
        TarWriter { out, pending: None, entries: 0, skip_content }
    }

    /// Entries stored so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Offer the next entry; returns whether its content is wanted. The
    /// header of a regular file waits for its first chunk or its end, so a
    /// file that cannot be read at all leaves no trace.
    pub fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        if let Some(p) = &self.pending {
            return Err(PluginError::Other(format!(
                "add called before end-entry of {}, whose content was wanted",
                show(&p.entry.path)
            )));
        }
        if entry.meta.kind == EntryKind::File && !self.skip_content {
            let announced = entry.meta.size;
            self.pending = Some(Pending { entry, announced, received: 0, header_written: false });
            return Ok(true);
        }
        write_headers(&mut self.out, &entry, 0)?;
        self.entries += 1;
        Ok(false)
    }

    /// The next chunk of the current file. Bytes past its announced size are
    /// dropped (`end_entry` warns).
    pub fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        let Some(p) = self.pending.as_mut() else {
            return Err(PluginError::Other("write called without an entry whose content was wanted".into()));
        };
        if data.is_empty() {
            return Ok(());
        }
        if !p.header_written {
            write_headers(&mut self.out, &p.entry, p.announced)?;
            p.header_written = true;
            self.entries += 1;
        }
        let room = p.announced.saturating_sub(p.received);
        let take = (data.len() as u64).min(room) as usize;
        self.out.write_all(&data[..take]).map_err(io_err)?;
        p.received += data.len() as u64;
        Ok(())
    }

    /// The current file's content ended: whole (`None`) or unreadable (the
    /// reason). Returns warnings about the entry, for the log.
    pub fn end_entry(&mut self, unreadable: Option<&str>) -> Result<Vec<String>, PluginError> {
        let Some(p) = self.pending.take() else {
            return Err(PluginError::Other("end-entry called without an entry whose content was wanted".into()));
        };
        let name = show(&p.entry.path);
        let mut warnings = Vec::new();
        if !p.header_written {
            if let Some(reason) = unreadable {
                warnings.push(format!("skipped {name}: its content could not be read ({reason})"));
                return Ok(warnings);
            }
            write_headers(&mut self.out, &p.entry, p.announced)?;
            self.entries += 1;
        }
        let stored = p.received.min(p.announced);
        write_zeros(&mut self.out, p.announced - stored)?;
        write_zeros(&mut self.out, padding(p.announced))?;
        let problem = match unreadable {
            Some(reason) => Some(format!(
                "{name} could not be read whole ({reason}); stored {stored} of {} bytes, padded with zeros",
                p.announced
            )),
            None if p.received < p.announced => Some(format!(
                "{name} shrank while it was backed up: {} of {} bytes arrived, padded with zeros",
                p.received, p.announced
            )),
            None => None,
        };
        if let Some(problem) = problem {
            write_incomplete_marker(&mut self.out, &problem)?;
            warnings.push(problem);
        } else if p.received > p.announced {
            warnings.push(format!(
                "{name} grew while it was backed up: kept the first {} of {} bytes",
                p.announced, p.received
            ));
        }
        Ok(warnings)
    }

    /// End the set; returns the output and the number of entries stored.
    pub fn finish(mut self) -> Result<(W, u64), PluginError> {
        if let Some(p) = &self.pending {
            return Err(PluginError::Other(format!(
                "finish called before end-entry of {}, whose content was wanted",
                show(&p.entry.path)
            )));
        }
        write_zeros(&mut self.out, 2 * BLOCK)?;
        self.out.flush().map_err(io_err)?;
        Ok((self.out, self.entries))
    }
}

// ---------------------------------------------------------------- reading

/// Reads one set back, entry by entry, streaming content.
pub struct TarReader<R: BufRead> {
    input: R,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding after the current entry's data, not yet consumed.
    pad: u64,
    /// Path of the last entry returned, for messages.
    last: Option<Vec<u8>>,
    done: bool,
    /// Incomplete entries met so far, one sentence each.
    pub problems: Vec<String>,
}

/// What extension records said about the next entry.
#[derive(Default)]
struct Extensions {
    long_path: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Vec<(String, String)>,
}

impl Extensions {
    fn get(&self, key: &str) -> Option<&str> {
        self.pax.iter().rev().find(|(k, _)| k.strip_prefix(PAX) == Some(key)).map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, PluginError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| corrupt(format!("PAX record {PAX}{key}={v} is not a number"))),
        }
    }
}

/// Parse PAX records by their lengths (values may hold any byte).
fn parse_pax(data: &[u8]) -> Result<Vec<(String, String)>, PluginError> {
    let bad = || corrupt("malformed PAX extended header");
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let kv = &rest[space + 1..len - 1];
        let eq = kv.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        records.push((unescape(&kv[..eq])?, unescape(&kv[eq + 1..])?));
        rest = &rest[len..];
    }
    Ok(records)
}

fn field<T>(r: io::Result<T>, what: &str) -> Result<T, PluginError> {
    r.map_err(|e| corrupt(format!("bad {what} field in a tar header: {e}")))
}

impl<R: BufRead> TarReader<R> {
    /// A reader of the set in `input`.
    pub fn new(input: R) -> TarReader<R> {
        TarReader { input, remaining: 0, pad: 0, last: None, done: false, problems: Vec::new() }
    }

    fn skip(&mut self, mut n: u64) -> Result<(), PluginError> {
        while n > 0 {
            let buf = self.input.fill_buf().map_err(io_err)?;
            if buf.is_empty() {
                return Err(corrupt("the set is truncated in the middle of an entry"));
            }
            let step = (buf.len() as u64).min(n) as usize;
            self.input.consume(step);
            n -= step as u64;
        }
        Ok(())
    }

    fn read_extension(&mut self, size: u64) -> Result<Vec<u8>, PluginError> {
        if size > MAX_EXTENSION {
            return Err(corrupt(format!("an extension record of {size} bytes is implausible")));
        }
        let mut data = vec![0; size as usize];
        self.input.read_exact(&mut data).map_err(|_| corrupt("the set is truncated in an extension record"))?;
        self.skip(padding(size))?;
        Ok(data)
    }

    /// Read the next header block; `None` at the end-of-archive marker.
    fn header(&mut self) -> Result<Option<Header>, PluginError> {
        let mut block = [0u8; BLOCK as usize];
        self.input.read_exact(&mut block).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("the set ends without its end-of-archive marker (truncated)"),
            _ => io_err(e),
        })?;
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let header = Header::from_byte_slice(&block).clone();
        let mut check = header.clone();
        check.set_cksum();
        if field(header.cksum(), "checksum")? != field(check.cksum(), "checksum")? {
            return Err(corrupt("a tar header's checksum does not match (the set is damaged)"));
        }
        Ok(Some(header))
    }

    /// The next entry; `None` at the end. Skips what is left of the previous
    /// entry's content without keeping it.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, PluginError> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        let mut ext = Extensions::default();
        loop {
            let Some(header) = self.header()? else {
                self.done = true;
                return Ok(None);
            };
            let size = field(header.entry_size(), "size")?;
            match header.entry_type() {
                EntryType::XHeader => ext.pax.extend(parse_pax(&self.read_extension(size)?)?),
                EntryType::XGlobalHeader => self.skip(size + padding(size))?,
                EntryType::GNULongName => ext.long_path = Some(strip_nul(self.read_extension(size)?)),
                EntryType::GNULongLink => ext.long_link = Some(strip_nul(self.read_extension(size)?)),
                t if t.as_byte() == INCOMPLETE_TYPE => {
                    self.skip(size + padding(size))?;
                    let reason = ext.get("reason").unwrap_or("no reason given");
                    let name = self.last.as_deref().map(show).unwrap_or_else(|| "an entry".into());
                    self.problems.push(format!("{name} is stored incomplete: {reason}"));
                    ext = Extensions::default();
                }
                _ => {
                    let entry = decode(&header, &ext, size)?;
                    self.remaining = if entry.meta.kind == EntryKind::File { size } else { 0 };
                    // Data of any other kind is not content: skip it with the padding.
                    self.pad = size - self.remaining + padding(size);
                    self.last = Some(entry.path.clone());
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Up to `max` further bytes of the regular file `next_entry` returned
    /// last; empty at its end.
    pub fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        let want = (max as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        let chunk = plugin_sdk::fill_chunk(&mut (&mut self.input).take(want as u64), want)?;
        if chunk.len() < want {
            return Err(corrupt("the set is truncated in the middle of a file's content"));
        }
        self.remaining -= want as u64;
        Ok(chunk)
    }
}

fn strip_nul(mut b: Vec<u8>) -> Vec<u8> {
    if b.last() == Some(&0) {
        b.pop();
    }
    b
}

fn decode(h: &Header, ext: &Extensions, data_size: u64) -> Result<Entry, PluginError> {
    let raw = ext.long_path.clone().unwrap_or_else(|| h.path_bytes().into_owned());
    let Some(rest) = raw.strip_prefix(ROOT) else {
        return Err(corrupt(format!("entry {} is not under {}", show(&raw), String::from_utf8_lossy(ROOT))));
    };
    let kind = match h.entry_type() {
        EntryType::Regular | EntryType::Continuous if ext.get("kind") == Some("socket") => EntryKind::Socket,
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Directory,
        EntryType::Symlink => EntryKind::Symlink,
        EntryType::Fifo => EntryKind::Fifo,
        EntryType::Char => EntryKind::CharDevice,
        EntryType::Block => EntryKind::BlockDevice,
        t => {
            return Err(corrupt(format!(
                "entry {} has the unsupported tar type {:?}",
                show(rest),
                t.as_byte() as char
            )));
        }
    };
    let path = match kind {
        EntryKind::Directory => rest.strip_suffix(b"/").unwrap_or(rest).to_vec(),
        _ => rest.to_vec(),
    };
    let small = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| corrupt(format!("the {what} of {} does not fit 32 bits", show(&path))))
    };
    let mode = match ext.number("mode")? {
        Some(m) => m,
        None => field(h.mode(), "mode")?,
    };
    let uid = small(field(h.uid(), "uid")?, "uid")?;
    let gid = small(field(h.gid(), "gid")?, "gid")?;
    let mtime = match ext.number("mtime")? {
        Some(t) => t,
        None => i64::try_from(field(h.mtime(), "mtime")?).map_err(|_| corrupt("an mtime is out of range"))?,
    };
    let mtime_nsec = ext.number("mtime_nsec")?.unwrap_or(0);
    let size = ext.number("size")?.unwrap_or(data_size);
    let symlink_target = match kind {
        EntryKind::Symlink => {
            Some(ext.long_link.clone().unwrap_or_else(|| h.link_name_bytes().unwrap_or_default().into_owned()))
        }
        _ => None,
    };
    let device = match kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => {
            let major = match ext.number("devmajor")? {
                Some(v) => v,
                None => field(h.device_major(), "device major")?.unwrap_or(0),
            };
            let minor = match ext.number("devminor")? {
                Some(v) => v,
                None => field(h.device_minor(), "device minor")?.unwrap_or(0),
            };
            Some((major, minor))
        }
        _ => None,
    };
    let attributes =
        ext.pax.iter().filter_map(|(k, v)| k.strip_prefix(ATTR).map(|name| (name.to_string(), v.clone()))).collect();
    let meta = Metadata { kind, mode, uid, gid, mtime, mtime_nsec, size, symlink_target, device };
    Ok(Entry { path, meta, attributes })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn meta(kind: EntryKind) -> Metadata {
        Metadata {
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime: 1_600_000_000,
            mtime_nsec: 0,
            size: 0,
            symlink_target: None,
            device: None,
        }
    }

    pub fn entry(path: &[u8], meta: Metadata) -> Entry {
        Entry { path: path.to_vec(), meta, attributes: Vec::new() }
    }

    fn file(path: &[u8], size: u64) -> Entry {
        entry(path, Metadata { size, ..meta(EntryKind::File) })
    }

    /// Back up `entries` (each with the content to send, in chunks of
    /// `chunk` bytes) into a Vec; returns the bytes and all warnings.
    fn backup(entries: &[(Entry, Vec<u8>)], chunk: usize) -> (Vec<u8>, Vec<String>) {
        let mut w = TarWriter::new(Vec::new(), false);
        let mut warnings = Vec::new();
        for (e, content) in entries {
            if w.add(e.clone()).unwrap() {
                for c in content.chunks(chunk) {
                    w.write(c).unwrap();
                }
                warnings.extend(w.end_entry(None).unwrap());
            }
        }
        let (out, count) = w.finish().unwrap();
        assert_eq!(count, entries.len() as u64);
        (out, warnings)
    }

    /// Read everything back: entries with their content.
    fn restore(bytes: &[u8], chunk: usize) -> (Vec<(Entry, Vec<u8>)>, Vec<String>) {
        let mut r = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut content = Vec::new();
            loop {
                let c = r.read(chunk).unwrap();
                if c.is_empty() {
                    break;
                }
                assert!(c.len() <= chunk);
                content.extend(c);
            }
            out.push((e, content));
        }
        (out, r.problems)
    }

    fn odd_entries() -> Vec<(Entry, Vec<u8>)> {
        let long = "a-name-longer-than-one-hundred-bytes-".repeat(4);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut all = vec![
            (entry(b"", Metadata { mode: 0o755, ..meta(EntryKind::Directory) }), vec![]),
            (file(b"big.bin", big.len() as u64), big),
            (file(b"empty-file", 0), vec![]),
            (
                entry(
                    b"empty",
                    Metadata { mode: 0o700, mtime: -5, mtime_nsec: 999_999_999, ..meta(EntryKind::Directory) },
                ),
                vec![],
            ),
            (entry(b"fifo", Metadata { mode: 0o640, ..meta(EntryKind::Fifo) }), vec![]),
            (entry(b"latin1-\xe9t\xe9", Metadata { size: 9, ..meta(EntryKind::File) }), b"not utf-8".to_vec()),
            (
                entry(
                    b"link-long",
                    Metadata {
                        mode: 0o777,
                        symlink_target: Some(long.repeat(2).into_bytes()),
                        ..meta(EntryKind::Symlink)
                    },
                ),
                vec![],
            ),
            (
                entry(
                    b"link-odd",
                    Metadata { symlink_target: Some(b"../t\xfe\x00x".to_vec()), ..meta(EntryKind::Symlink) },
                ),
                vec![],
            ),
            (
                entry(
                    b"link-short",
                    Metadata { symlink_target: Some(b"plain.txt".to_vec()), ..meta(EntryKind::Symlink) },
                ),
                vec![],
            ),
            (entry(b"new\nline", Metadata { size: 7, ..meta(EntryKind::File) }), b"newline".to_vec()),
            (entry(b"null", Metadata { mode: 0o666, device: Some((1, 3)), ..meta(EntryKind::CharDevice) }), vec![]),
            (
                entry(
                    b"huge-dev",
                    Metadata { device: Some((u32::MAX, 0o7777777 + 1)), ..meta(EntryKind::BlockDevice) },
                ),
                vec![],
            ),
            (entry(b"sock", meta(EntryKind::Socket)), vec![]),
            (entry(b"setuid", Metadata { mode: 0o4755, size: 10, ..meta(EntryKind::File) }), b"#!/bin/sh\n".to_vec()),
            (entry(b"sticky", Metadata { mode: 0o1777, size: 4096, ..meta(EntryKind::Directory) }), vec![]),
            (
                entry(
                    b"owner",
                    Metadata { uid: u32::MAX, gid: 4_000_000, mtime: 1 << 40, mtime_nsec: 1, ..meta(EntryKind::File) },
                ),
                vec![],
            ),
            (entry(long.as_bytes(), Metadata { mode: 0o755, ..meta(EntryKind::Directory) }), vec![]),
            (
                entry(format!("{long}/{long}").as_bytes(), Metadata { size: 9, ..meta(EntryKind::File) }),
                b"deep long".to_vec(),
            ),
            (entry(&[b'x'; 95], meta(EntryKind::Fifo)), vec![]),
            (entry(&[b'y'; 96], meta(EntryKind::Directory)), vec![]),
        ];
        all[2].0.attributes = vec![
            ("imap.flags".into(), "\\Seen \\Answered".into()),
            ("odd=name%\nx".into(), "multi\nline = 100% é".into()),
            ("imap.flags".into(), "duplicate, kept in order".into()),
            ("empty".into(), String::new()),
        ];
        all
    }

    #[test]
    fn entries_and_content_round_trip_exactly() {
        let entries = odd_entries();
        for (write_chunk, read_chunk) in [(1 << 20, 4 << 20), (7, 13), (512, 512), (100_000, 1)] {
            if read_chunk == 1 {
                continue; // too slow for the big file, covered by the others
            }
            let (bytes, warnings) = backup(&entries, write_chunk);
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(bytes.len() % 512, 0);
            let (back, problems) = restore(&bytes, read_chunk);
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(back.len(), entries.len());
            for (got, want) in back.iter().zip(&entries) {
                assert_eq!(got.0, want.0);
                assert_eq!(got.1, want.1, "content of {}", show(&want.0.path));
            }
        }
    }

    #[test]
    fn the_tar_crate_reads_paths_links_and_records_exactly() {
        let entries = odd_entries();
        let (bytes, _) = backup(&entries, 4096);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = 0;
        for (got, (want, content)) in archive.entries().unwrap().zip(&entries) {
            let mut got = got.unwrap();
            assert_eq!(got.path_bytes().into_owned(), stored_path(want));
            let link = got.link_name_bytes().map(|l| l.into_owned());
            match &want.meta.symlink_target {
                Some(t) if !t.is_empty() => assert_eq!(link.as_ref(), Some(t)),
                _ => assert_eq!(link, None),
            }
            let h = got.header();
            assert_eq!(h.uid().unwrap(), u64::from(want.meta.uid));
            assert_eq!(h.gid().unwrap(), u64::from(want.meta.gid));
            assert_eq!(h.mode().unwrap(), want.meta.mode);
            assert_eq!(h.mtime().unwrap(), want.meta.mtime.max(0) as u64);
            let records: Vec<(String, String)> = got
                .pax_extensions()
                .unwrap()
                .map(|exts| {
                    exts.map(|e| e.unwrap()).map(|e| (e.key().unwrap().into(), e.value().unwrap().into())).collect()
                })
                .unwrap_or_default();
            let attrs: Vec<(String, String)> = records
                .iter()
                .filter_map(|(k, v)| {
                    Some((unescape(k.strip_prefix(ATTR)?.as_bytes()).ok()?, unescape(v.as_bytes()).ok()?))
                })
                .collect();
            assert_eq!(attrs, want.attributes);
            if want.meta.mtime_nsec != 0 {
                assert!(records.contains(&("ORCHESTRATOR.mtime_nsec".into(), want.meta.mtime_nsec.to_string())));
            }
            let mut data = Vec::new();
            got.read_to_end(&mut data).unwrap();
            assert_eq!(&data, content);
            seen += 1;
        }
        assert_eq!(seen, entries.len());
    }

    #[test]
    fn a_file_that_shrank_is_padded_and_reported() {
        let entries = vec![(entry(b"", meta(EntryKind::Directory)), vec![]), (file(b"a", 10), b"abc".to_vec())];
        let (bytes, warnings) = backup(&entries, 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`a` shrank"), "{warnings:?}");
        let (back, problems) = restore(&bytes, 100);
        assert_eq!(back[1].1, b"abc\0\0\0\0\0\0\0");
        assert_eq!(back[1].0.meta.size, 10);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("`a` is stored incomplete: `a` shrank"), "{problems:?}");
        // The tar crate still reads the set.
        assert_eq!(tar::Archive::new(&bytes[..]).entries().unwrap().count(), 3);
    }

    #[test]
    fn a_file_that_grew_keeps_its_announced_size() {
        let entries = vec![(entry(b"", meta(EntryKind::Directory)), vec![]), (file(b"a", 3), b"abcdef".to_vec())];
        let (bytes, warnings) = backup(&entries, 4);
        assert!(warnings[0].contains("`a` grew"), "{warnings:?}");
        let (back, problems) = restore(&bytes, 100);
        assert_eq!(back[1].1, b"abc");
        assert!(problems.is_empty());
    }

    #[test]
    fn unreadable_files_are_skipped_or_marked() {
        let mut w = TarWriter::new(Vec::new(), false);
        assert!(!w.add(entry(b"", meta(EntryKind::Directory))).unwrap());
        // Unreadable before any byte: no trace of it.
        assert!(w.add(file(b"locked", 5)).unwrap());
        let warnings = w.end_entry(Some("permission denied")).unwrap();
        assert!(warnings[0].contains("skipped `locked`") && warnings[0].contains("permission denied"));
        // Unreadable half way: padded and marked.
        assert!(w.add(file(b"m-half", 6)).unwrap());
        w.write(b"abc").unwrap();
        let warnings = w.end_entry(Some("i/o error")).unwrap();
        assert!(warnings[0].contains("`m-half` could not be read whole (i/o error)"), "{warnings:?}");
        // A whole empty file without any write call.
        assert!(w.add(file(b"z-empty", 0)).unwrap());
        assert!(w.end_entry(None).unwrap().is_empty());
        let (bytes, count) = w.finish().unwrap();
        assert_eq!(count, 3);
        let (back, problems) = restore(&bytes, 100);
        let paths: Vec<&[u8]> = back.iter().map(|(e, _)| e.path.as_slice()).collect();
        assert_eq!(paths, [&b""[..], b"m-half", b"z-empty"]);
        assert_eq!(back[1].1, b"abc\0\0\0");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`m-half` is stored incomplete") && problems[0].contains("stored 3 of 6 bytes"));
    }

    #[test]
    fn metadata_only_sets_keep_the_size() {
        let mut w = TarWriter::new(Vec::new(), true);
        assert!(!w.add(entry(b"", meta(EntryKind::Directory))).unwrap());
        assert!(!w.add(file(b"f", 1234)).unwrap());
        let (bytes, _) = w.finish().unwrap();
        let (back, _) = restore(&bytes, 100);
        assert_eq!(back[1].0, file(b"f", 1234));
        assert!(back[1].1.is_empty());
    }

    #[test]
    fn calls_out_of_order_are_errors() {
        let mut w = TarWriter::new(Vec::new(), false);
        assert!(w.write(b"x").is_err());
        assert!(w.end_entry(None).is_err());
        assert!(w.add(file(b"a", 1)).unwrap());
        assert!(w.add(file(b"b", 1)).is_err());
        assert!(w.finish().is_err());
    }

    #[test]
    fn skipping_content_needs_no_reads() {
        let entries = odd_entries();
        let (bytes, _) = backup(&entries, 1 << 20);
        let mut r = TarReader::new(&bytes[..]);
        let mut n = 0;
        while let Some(e) = r.next_entry().unwrap() {
            if e.path == b"big.bin" {
                assert_eq!(r.read(10).unwrap(), &entries[1].1[..10]); // read a little, skip the rest
            }
            n += 1;
        }
        assert_eq!(n, entries.len());
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn damage_is_detected() {
        let (bytes, _) = backup(&odd_entries(), 1 << 20);
        // Truncated: at a block boundary and in the middle of content.
        for cut in [512 * 3, 10_000, bytes.len() - 1024] {
            let mut r = TarReader::new(&bytes[..cut]);
            let err = loop {
                match r.next_entry() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("a truncated set read to its end"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(&err, PluginError::Corrupt(m) if m.contains("truncated")), "{err:?}");
        }
        // A flipped byte in a header.
        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        assert!(
            matches!(TarReader::new(&damaged[..]).next_entry(), Err(PluginError::Corrupt(m)) if m.contains("checksum"))
        );
        // Not a set of this sink.
        let mut other = tar::Header::new_gnu();
        other.set_path("etc/passwd").unwrap();
        other.set_size(0);
        other.set_mode(0o644);
        other.set_cksum();
        let mut foreign = other.as_bytes().to_vec();
        foreign.extend([0; 1024]);
        let err = TarReader::new(&foreign[..]).next_entry();
        assert!(matches!(&err, Err(PluginError::Corrupt(m)) if m.contains("not under root/")), "{err:?}");
    }

    #[test]
    fn pax_records_have_exact_lengths() {
        for n in [0, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 997, 998] {
            let mut out = Vec::new();
            pax_record(&mut out, "k", &"v".repeat(n));
            let len: usize =
                std::str::from_utf8(&out[..out.iter().position(|&b| b == b' ').unwrap()]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value of {n} bytes");
            assert_eq!(parse_pax(&out).unwrap(), vec![("k".to_string(), "v".repeat(n))]);
        }
        assert!(parse_pax(b"5 k=v\n").is_err());
        assert!(parse_pax(b"x k=v\n").is_err());
        assert_eq!(escape("a=b%c\nd", true), "a%3Db%25c%0Ad");
        assert_eq!(unescape(escape("a=b%c\nd é", true).as_bytes()).unwrap(), "a=b%c\nd é");
    }
}
