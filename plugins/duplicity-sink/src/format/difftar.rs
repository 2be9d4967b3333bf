//! Writing a set's data as difftar volumes (spec §3.4): each file's data (or
//! delta) is cut into 64 KiB blocks; data shorter than one block is a single
//! `snapshot/` or `diff/` entry, longer data becomes `multivol_*/<path>/<n>`
//! chunks. A volume is closed before an entry would push it past the volume
//! size, and every volume is a complete tar. The writer records each volume's
//! first and last entry for the manifest.
//!
//! An entry's PAX records (its attributes) go before its header; a multivol
//! file's go before its first chunk only, the header readers take the
//! entry's metadata from.

use super::manifest::Volume;
use super::tarentry::{Prefix, TarMeta, entry_name, footer, padding, write_header_pax};
use std::io::{self, Write};

/// duplicity's read size, and so the chunk size of multivol entries.
pub const BLOCK: usize = 64 * 1024;

/// Where volumes go: the plugin stores them through the host.
pub trait VolumeStore {
    /// A volume being written.
    type Writer: Write;
    /// Start volume `number`.
    fn open(&mut self, number: u32) -> io::Result<Self::Writer>;
    /// Complete it; returns the SHA-1 (lowercase hex) of the stored bytes.
    fn close(&mut self, number: u32, writer: Self::Writer) -> io::Result<String>;
}

struct Open<W> {
    writer: W,
    written: u64,
    first: Option<(Vec<u8>, Option<u64>)>,
    last: (Vec<u8>, Option<u64>),
}

/// A file whose data is arriving.
struct Pending {
    index: Vec<u8>,
    diff: bool,
    meta: TarMeta,
    /// PAX records for the first (or only) header.
    pax: Vec<u8>,
    buf: Vec<u8>,
    chunks: u64,
}

/// Writes a set's entries into volumes.
pub struct DiffTarWriter<S: VolumeStore> {
    store: S,
    volsize: u64,
    number: u32,
    open: Option<Open<S::Writer>>,
    volumes: Vec<Volume>,
    pending: Option<Pending>,
}

impl<S: VolumeStore> DiffTarWriter<S> {
    /// Volumes of about `volsize` bytes (plaintext) in `store`.
    pub fn new(store: S, volsize: u64) -> Self {
        DiffTarWriter {
            store,
            volsize: volsize.max(2 * BLOCK as u64),
            number: 0,
            open: None,
            volumes: Vec::new(),
            pending: None,
        }
    }

    /// Write one tar entry into the current volume, starting a new volume
    /// first if it would overflow.
    fn entry(
        &mut self,
        index: &[u8],
        block: Option<u64>,
        name: &[u8],
        meta: &TarMeta,
        pax: &[u8],
        data: &[u8],
    ) -> io::Result<()> {
        let mut header = Vec::with_capacity(1536 + pax.len());
        write_header_pax(&mut header, name, meta, data.len() as u64, pax)?;
        let size = header.len() as u64 + data.len() as u64 + padding(data.len() as u64) as u64;
        let overflows = self.open.as_ref().is_some_and(|o| o.first.is_some() && o.written + size + 1024 > self.volsize);
        if overflows {
            self.close_volume()?;
        }
        if self.open.is_none() {
            self.number += 1;
            let writer = self.store.open(self.number)?;
            self.open = Some(Open { writer, written: 0, first: None, last: (Vec::new(), None) });
        }
        let open = self.open.as_mut().expect("opened above");
        open.writer.write_all(&header)?;
        open.writer.write_all(data)?;
        open.writer.write_all(&vec![0u8; padding(data.len() as u64)])?;
        open.written += size;
        let position = (index.to_vec(), block);
        if open.first.is_none() {
            open.first = Some(position.clone());
        }
        open.last = position;
        Ok(())
    }

    fn close_volume(&mut self) -> io::Result<()> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        open.writer.write_all(&footer(open.written))?;
        let sha1 = self.store.close(self.number, open.writer)?;
        let start = open.first.unwrap_or_default();
        self.volumes.push(Volume { number: self.number, start, end: open.last, sha1: Some(sha1) });
        Ok(())
    }

    /// An entry without data: a directory, symlink, fifo, device, or a
    /// `deleted/` marker.
    pub fn add(&mut self, prefix: Prefix, index: &[u8], meta: &TarMeta) -> io::Result<()> {
        self.add_pax(prefix, index, meta, &[])
    }

    /// [`DiffTarWriter::add`] with PAX records (attributes) in its header.
    pub fn add_pax(&mut self, prefix: Prefix, index: &[u8], meta: &TarMeta, pax: &[u8]) -> io::Result<()> {
        let is_dir = meta.kind == super::tarentry::TarKind::Directory && prefix == Prefix::Snapshot;
        let name = entry_name(prefix, index, is_dir, false);
        self.entry(index, None, &name, meta, pax, &[])
    }

    /// Start a regular file whose data (`diff`: a delta) follows with
    /// [`DiffTarWriter::write`] and ends with [`DiffTarWriter::end_file`].
    pub fn begin_file(&mut self, index: &[u8], diff: bool, meta: TarMeta) {
        self.begin_file_pax(index, diff, meta, Vec::new());
    }

    /// [`DiffTarWriter::begin_file`] with PAX records (attributes) for the
    /// file's first header.
    pub fn begin_file_pax(&mut self, index: &[u8], diff: bool, meta: TarMeta, pax: Vec<u8>) {
        self.pending =
            Some(Pending { index: index.to_vec(), diff, meta, pax, buf: Vec::with_capacity(BLOCK), chunks: 0 });
    }

    fn emit_chunk(&mut self, last: bool) -> io::Result<()> {
        let mut p = self.pending.take().expect("a file is open");
        // `write` cuts a chunk as soon as the buffer holds exactly one block,
        // so the buffer is the chunk: hand it over instead of copying it.
        debug_assert!(last || p.buf.len() == BLOCK);
        let data = std::mem::replace(&mut p.buf, if last { Vec::new() } else { Vec::with_capacity(BLOCK) });
        let result = self.chunk_entry(&mut p, &data);
        self.pending = Some(p);
        result
    }

    fn chunk_entry(&mut self, p: &mut Pending, data: &[u8]) -> io::Result<()> {
        p.chunks += 1;
        let prefix = if p.diff { Prefix::MultivolDiff(p.chunks) } else { Prefix::MultivolSnapshot(p.chunks) };
        let name = entry_name(prefix, &p.index, false, false);
        let pax = std::mem::take(&mut p.pax);
        self.entry(&p.index, Some(p.chunks), &name, &p.meta, &pax, data)
    }

    /// More data of the open file. A full block is cut as soon as it is
    /// there: a file that reaches one block is multivol whatever follows.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let p = self.pending.as_mut().expect("a file is open");
            if p.buf.is_empty() && data.len() >= BLOCK {
                // Whole blocks of the caller's data are chunks as they are:
                // no copy through the buffer.
                let mut p = self.pending.take().expect("a file is open");
                let result = self.chunk_entry(&mut p, &data[..BLOCK]);
                self.pending = Some(p);
                result?;
                data = &data[BLOCK..];
                continue;
            }
            let take = (BLOCK - p.buf.len()).min(data.len());
            p.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if p.buf.len() == BLOCK {
                self.emit_chunk(false)?;
            }
        }
        Ok(())
    }

    /// The open file is complete.
    pub fn end_file(&mut self) -> io::Result<()> {
        let p = self.pending.as_ref().expect("a file is open");
        if p.chunks == 0 {
            let p = self.pending.take().expect("checked");
            let name = entry_name(if p.diff { Prefix::Diff } else { Prefix::Snapshot }, &p.index, false, false);
            return self.entry(&p.index, None, &name, &p.meta, &p.pax, &p.buf);
        }
        // What is left is the last chunk: empty when the length is an exact
        // multiple of the block, as duplicity writes it.
        self.emit_chunk(true)?;
        self.pending = None;
        Ok(())
    }

    /// Close the last volume (an empty set still gets one, as in duplicity)
    /// and return the manifest's volume records.
    pub fn finish(mut self) -> io::Result<(Vec<Volume>, S)> {
        if self.open.is_none() && self.volumes.is_empty() {
            self.number += 1;
            let writer = self.store.open(self.number)?;
            self.open = Some(Open { writer, written: 0, first: Some((Vec::new(), None)), last: (Vec::new(), None) });
        }
        self.close_volume()?;
        Ok((self.volumes, self.store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tarentry::TarKind;
    use std::collections::BTreeMap;

    const VOLUME_SHA1: &str = "81198e485de9d16b477c04049ee4832e9d806fa0";
    const SIGTAR_SHA1: &str = "6b26270909608c02703bbba026a497079bd76618";

    /// Volumes kept in memory.
    #[derive(Default)]
    struct Memory(BTreeMap<u32, Vec<u8>>);

    impl VolumeStore for &mut Memory {
        type Writer = Vec<u8>;
        fn open(&mut self, _: u32) -> io::Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn close(&mut self, number: u32, w: Vec<u8>) -> io::Result<String> {
            let hash = format!("{:040x}", w.len());
            self.0.insert(number, w);
            Ok(hash)
        }
    }

    fn meta(kind: TarKind) -> TarMeta {
        TarMeta { kind, mode: 0o644, uid: 0, gid: 0, mtime: 1, link_target: None, device: None }
    }

    fn names(volume: &[u8]) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(volume);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().size().unwrap())
            })
            .collect()
    }

    fn file(w: &mut DiffTarWriter<&mut Memory>, index: &[u8], len: usize, piece: usize) {
        w.begin_file(index, false, meta(TarKind::Regular));
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        for c in data.chunks(piece.max(1)) {
            w.write(c).unwrap();
        }
        w.end_file().unwrap();
    }

    #[test]
    fn chunking_follows_duplicity() {
        let mut mem = Memory::default();
        let mut w = DiffTarWriter::new(&mut mem, 200 << 20);
        w.add(Prefix::Snapshot, b"", &meta(TarKind::Directory)).unwrap();
        file(&mut w, b"a.txt", 6, 6);
        file(&mut w, b"almost", BLOCK - 1, 1000);
        file(&mut w, b"exact", BLOCK, 7777);
        file(&mut w, b"big.bin", 2_500_000, 1 << 20);
        file(&mut w, b"empty", 0, 1);
        w.add(Prefix::Deleted, b"gone", &TarMeta::deleted()).unwrap();
        let (volumes, _) = w.finish().unwrap();
        assert_eq!(volumes.len(), 1);
        let got = names(&mem.0[&1]);
        let mut want = vec![
            ("snapshot/./".to_string(), 0),
            ("snapshot/a.txt".into(), 6),
            ("snapshot/almost".into(), BLOCK as u64 - 1),
        ];
        want.push(("multivol_snapshot/exact/1".into(), BLOCK as u64));
        want.push(("multivol_snapshot/exact/2".into(), 0));
        for n in 1..=38 {
            want.push((format!("multivol_snapshot/big.bin/{n}"), BLOCK as u64));
        }
        // Spec §3.4: 2,500,000 bytes are chunks 1..38 of 65536 and chunk 39 of 9632.
        want.push(("multivol_snapshot/big.bin/39".into(), 9632));
        want.push(("snapshot/empty".into(), 0));
        want.push(("deleted/gone".into(), 0));
        assert_eq!(got, want);
        assert_eq!(mem.0[&1].len() % 10240, 0);
    }

    #[test]
    fn volumes_split_and_record_their_ends() {
        let mut mem = Memory::default();
        let mut w = DiffTarWriter::new(&mut mem, 1 << 20);
        w.add(Prefix::Snapshot, b"", &meta(TarKind::Directory)).unwrap();
        file(&mut w, b"a.txt", 6, 6);
        file(&mut w, b"big.bin", 2_500_000, 100_000);
        w.add(Prefix::Snapshot, b"z", &meta(TarKind::Directory)).unwrap();
        let (volumes, _) = w.finish().unwrap();
        assert_eq!(volumes.len(), 3, "{volumes:?}");
        assert_eq!(volumes[0].start, (Vec::new(), None));
        // A volume ends inside big.bin and the next starts with the next chunk.
        let (end_path, end_block) = volumes[0].end.clone();
        assert_eq!(end_path, b"big.bin");
        assert_eq!(volumes[1].start, (b"big.bin".to_vec(), end_block.map(|b| b + 1)));
        assert_eq!(volumes[2].end, (b"z".to_vec(), None));
        for (n, v) in &mem.0 {
            assert!(v.len() as u64 <= (1 << 20) + 10240, "volume {n} is {} bytes", v.len());
            assert!(!names(v).is_empty());
        }
        // Chunks continue across volumes in order.
        let all: Vec<String> = mem.0.values().flat_map(|v| names(v)).map(|(n, _)| n).collect();
        let chunks: Vec<u64> = all
            .iter()
            .filter_map(|n| n.strip_prefix("multivol_snapshot/big.bin/"))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(chunks, (1..=39).collect::<Vec<_>>());
    }

    /// A volume and a sigtar of entries without attributes, written with the
    /// calls that existed before attributes did.
    fn attribute_less_archive() -> (Vec<u8>, Vec<u8>) {
        use crate::format::tarentry::write_header;
        let mut mem = Memory::default();
        let mut w = DiffTarWriter::new(&mut mem, 200 << 20);
        w.add(Prefix::Snapshot, b"", &meta(TarKind::Directory)).unwrap();
        file(&mut w, b"a.txt", 6, 6);
        file(
            &mut w,
            "ünï©ode and a name longer than a hundred bytes, to need a GNU long-name record of its own".as_bytes(),
            70_000,
            4096,
        );
        let link = TarMeta { link_target: Some(b"a.txt".to_vec()), ..meta(TarKind::Symlink) };
        w.add(Prefix::Snapshot, b"link", &link).unwrap();
        w.begin_file(b"z", true, meta(TarKind::Regular));
        w.write(&[0x72, 0x73, 0x02, 0x36, 0x45, 0, 6, 0]).unwrap();
        w.end_file().unwrap();
        w.add(Prefix::Deleted, b"zz", &TarMeta::deleted()).unwrap();
        w.finish().unwrap();
        let mut sigtar = Vec::new();
        for (name, m, data) in [
            (&b"snapshot/"[..], meta(TarKind::Directory), &b""[..]),
            (b"signature/a.txt", meta(TarKind::Regular), b"sig"),
            (b"deleted/zz", TarMeta::deleted(), b""),
        ] {
            write_header(&mut sigtar, name, &m, data.len() as u64).unwrap();
            sigtar.extend_from_slice(data);
            sigtar.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        let len = sigtar.len() as u64;
        sigtar.extend(footer(len));
        (mem.0.remove(&1).unwrap(), sigtar)
    }

    #[test]
    fn entries_without_attributes_are_written_as_before_attributes_existed() {
        use sha1::Digest;
        let (volume, sigtar) = attribute_less_archive();
        let hex = |b: &[u8]| sha1::Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>();
        // Hashes of the bytes the writer produced before attributes were
        // stored (commit c143915); duplicity interop depends on them.
        assert_eq!((hex(&volume), hex(&sigtar)), (VOLUME_SHA1.to_string(), SIGTAR_SHA1.to_string()));
        assert!(!volume.windows(12).any(|w| w == b"ORCHESTRATOR"));
    }

    #[test]
    fn attributes_go_before_an_entrys_first_header() {
        use crate::format::tarentry::pax_records;
        use crate::format::tarread::TarReader;
        let attrs = vec![("maildir.info".to_string(), "2,FS".to_string())];
        let pax = pax_records(&attrs, None);
        let mut mem = Memory::default();
        let mut w = DiffTarWriter::new(&mut mem, 200 << 20);
        w.add_pax(Prefix::Snapshot, b"", &meta(TarKind::Directory), &pax).unwrap();
        w.begin_file_pax(b"small", false, meta(TarKind::Regular), pax.clone());
        w.write(b"abc").unwrap();
        w.end_file().unwrap();
        w.begin_file_pax(b"big", true, meta(TarKind::Regular), pax.clone());
        w.write(&vec![1u8; BLOCK + 10]).unwrap();
        w.end_file().unwrap();
        file(&mut w, b"plain", 5, 5);
        w.finish().unwrap();
        let volume = &mem.0[&1];
        let mut r = TarReader::new(&volume[..]);
        let mut got = Vec::new();
        while let Some(h) = r.next_header().unwrap() {
            got.push((String::from_utf8(h.name).unwrap(), h.size, h.attributes.len()));
        }
        assert_eq!(
            got,
            [
                ("snapshot/./".to_string(), 0, 1),
                ("snapshot/small".into(), 3, 1),
                ("multivol_diff/big/1".into(), BLOCK as u64, 1),
                ("multivol_diff/big/2".into(), 10, 0),
                ("snapshot/plain".into(), 5, 0),
            ]
        );
        // The tar crate reads the same entries.
        assert_eq!(names(volume).len(), 5);
    }

    #[test]
    fn an_empty_set_still_has_one_volume() {
        let mut mem = Memory::default();
        let (volumes, _) = DiffTarWriter::new(&mut mem, 1 << 20).finish().unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!((volumes[0].start.clone(), volumes[0].end.clone()), ((Vec::new(), None), (Vec::new(), None)));
        assert_eq!(mem.0[&1], vec![0u8; 10240], "duplicity's empty volume is 10240 zero bytes");
    }
}
