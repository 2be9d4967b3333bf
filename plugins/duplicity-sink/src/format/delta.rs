//! librsync deltas (spec §4.3), streamed both ways.
//!
//! Making one: fast_rsync diffs whole buffers only, so the new file is cut
//! into segments and each is diffed against the old signature on its own.
//! COPY commands name offsets in the *old* file, so the segments' command
//! lists concatenate into one valid delta; a block that straddles a segment
//! boundary is stored as a literal instead of a copy, which costs at most a
//! couple of blocks per segment and keeps memory at one segment.
//!
//! Applying one: the delta is read command by command and COPYs are served
//! from the previous version through [`Base`], so neither the delta nor the
//! file is ever held whole.

use fast_rsync::Signature;
use std::io::{self, Read, Write};

/// librsync's delta magic (`RS_DELTA_MAGIC`).
const MAGIC: [u8; 4] = 0x7273_0236u32.to_be_bytes();
/// `RS_OP_END`.
const END: u8 = 0;
/// Bytes of new data diffed at a time.
const SEGMENT: usize = 16 << 20;

/// A delta being computed as the new version of a file streams past.
pub struct DeltaWriter {
    signature: Signature,
    segment: Vec<u8>,
    started: bool,
}

impl DeltaWriter {
    /// A delta against the librsync signature `old_signature` (MD4, as in
    /// duplicity's sigtars).
    pub fn new(old_signature: Vec<u8>) -> Result<DeltaWriter, String> {
        let signature =
            Signature::deserialize(old_signature).map_err(|e| format!("unusable signature of the old version: {e}"))?;
        Ok(DeltaWriter { signature, segment: Vec::new(), started: false })
    }

    /// Feed the next bytes of the new version; delta bytes that are ready
    /// are appended to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !data.is_empty() {
            let take = (SEGMENT - self.segment.len()).min(data.len());
            self.segment.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.segment.len() == SEGMENT {
                self.flush_segment(out)?;
            }
        }
        Ok(())
    }

    fn flush_segment(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut delta = Vec::with_capacity(self.segment.len() / 8);
        fast_rsync::diff(&self.signature.index(), &self.segment, &mut delta).map_err(io::Error::other)?;
        // Each call writes MAGIC, commands, END: keep one MAGIC in front and
        // only the commands of every segment.
        let commands = &delta[MAGIC.len()..delta.len() - 1];
        if !self.started {
            out.extend_from_slice(&MAGIC);
            self.started = true;
        }
        out.extend_from_slice(commands);
        self.segment.clear();
        Ok(())
    }

    /// The new version is complete: the rest of the delta.
    pub fn finish(mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.segment.is_empty() {
            self.flush_segment(out)?;
        }
        if !self.started {
            out.extend_from_slice(&MAGIC);
        }
        out.push(END);
        Ok(())
    }
}

/// The delta that gives back a base of `size` bytes unchanged: the magic,
/// one COPY of offset 0 and length `size` (the narrowest length field, as
/// librsync writes it; no COPY for an empty base), END. Stored for a file
/// whose metadata or attributes changed but whose content did not.
pub fn copy_all(size: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    if size > 0 {
        let width_log2: u8 = match size {
            0..=0xff => 0,
            0x100..=0xffff => 1,
            0x1_0000..=0xffff_ffff => 2,
            _ => 3,
        };
        // 0x45 + 4 * log2(offset width 1) + log2(length width).
        out.push(0x45 + width_log2);
        out.push(0);
        out.extend_from_slice(&size.to_be_bytes()[8 - (1 << width_log2)..]);
    }
    out.push(END);
    out
}

/// The previous version of a file, read at offsets by COPY commands.
pub trait Base {
    /// Fill `buf` from `offset`; returns the count, short only at the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl Base for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset.min(self.len() as u64)) as usize;
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// A base read front to back from a stream: COPY commands may skip ahead
/// but never go back. For deltas whose copies are in order
/// ([`copies_in_order`]), so the previous version needs no random access and
/// no temporary copy.
pub struct Forward<'a, R: Read> {
    /// The previous version's bytes from `pos` on.
    pub inner: &'a mut R,
    /// How far `inner` has been read.
    pub pos: &'a mut u64,
}

impl<R: Read> Base for Forward<'_, R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset < *self.pos {
            return Err(bad(format!("a delta copies from {offset}, behind {} already read", self.pos)));
        }
        let skip = offset - *self.pos;
        let skipped = io::copy(&mut (&mut *self.inner).take(skip), &mut io::sink())?;
        *self.pos += skipped;
        if skipped < skip {
            return Ok(0);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        *self.pos += filled as u64;
        Ok(filled)
    }
}

/// A [`Base`] read from its start as a stream.
pub struct Sequential<B: Base> {
    pub base: B,
    pub pos: u64,
}

impl<B: Base> Read for Sequential<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.base.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Whether every COPY of the delta read from `delta` starts at or after the
/// end of the one before it (as in the delta of a file changed in place), so
/// it can be applied to a base read front to back with [`Forward`].
pub fn copies_in_order(delta: &mut impl Read) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    delta.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(bad(format!("not a librsync delta (magic {magic:02x?})")));
    }
    let mut patch = Patch::new();
    let mut next = 0u64;
    loop {
        match patch.command(delta)? {
            Op::Next if patch.ended => return Ok(true),
            Op::Literal(n) => {
                if io::copy(&mut delta.take(n), &mut io::sink())? < n {
                    return Err(bad("a delta's literal is cut short".into()));
                }
            }
            Op::Copy { offset, left } => {
                if offset < next {
                    return Ok(false);
                }
                next = offset.saturating_add(left);
            }
            Op::Next => {}
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_uint(delta: &mut impl Read, width: usize) -> io::Result<u64> {
    let mut b = [0u8; 8];
    delta.read_exact(&mut b[8 - width..])?;
    Ok(u64::from_be_bytes(b))
}

/// Apply the librsync delta read from `delta` to `base`, writing the new
/// version to `out`; returns its length. Reads the delta up to its END
/// command, no further.
pub fn apply(base: &mut impl Base, delta: &mut impl Read, out: &mut impl Write) -> io::Result<u64> {
    let mut patch = Patch::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = patch.read(base, delta, &mut buf)?;
        if n == 0 {
            return Ok(written);
        }
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
}

/// A librsync delta being applied as its output is read: the new version
/// streams out without ever being stored whole. The base and the delta are
/// passed to each [`Patch::read`], so their owner can keep them elsewhere.
#[derive(Debug, Default)]
pub struct Patch {
    started: bool,
    ended: bool,
    /// What the current command still has to give.
    op: Op,
}

#[derive(Debug, Default)]
enum Op {
    #[default]
    Next,
    Literal(u64),
    Copy {
        offset: u64,
        left: u64,
    },
}

impl Patch {
    /// A patch before the delta's magic.
    pub fn new() -> Patch {
        Patch::default()
    }

    /// The next bytes of the new version into `out`; 0 after the END
    /// command (which is read, and nothing after it).
    pub fn read(&mut self, base: &mut impl Base, delta: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            let mut magic = [0u8; 4];
            delta.read_exact(&mut magic).map_err(|e| bad(format!("a delta is too short: {e}")))?;
            if magic != MAGIC {
                return Err(bad(format!("not a librsync delta (magic {:02x?})", magic)));
            }
            self.started = true;
        }
        loop {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.op {
                Op::Next => self.op = self.command(delta)?,
                Op::Literal(0) | Op::Copy { left: 0, .. } => self.op = Op::Next,
                Op::Literal(left) => {
                    let want = left.min(out.len() as u64) as usize;
                    delta
                        .read_exact(&mut out[..want])
                        .map_err(|e| bad(format!("a delta's literal is cut short: {e}")))?;
                    self.op = Op::Literal(left - want as u64);
                    return Ok(want);
                }
                Op::Copy { offset, left } => {
                    let want = left.min(out.len() as u64) as usize;
                    let n = base.read_at(offset, &mut out[..want])?;
                    if n < want {
                        return Err(bad(format!(
                            "a delta copies bytes {}..{} of the previous version, which is shorter",
                            offset,
                            offset + left
                        )));
                    }
                    self.op = Op::Copy { offset: offset + n as u64, left: left - n as u64 };
                    return Ok(n);
                }
            }
        }
    }

    fn command(&mut self, delta: &mut impl Read) -> io::Result<Op> {
        let mut op = [0u8; 1];
        delta.read_exact(&mut op).map_err(|e| bad(format!("a delta ends without its END command: {e}")))?;
        Ok(match op[0] {
            END => {
                self.ended = true;
                Op::Next
            }
            op @ 0x01..=0x40 => Op::Literal(op as u64),
            op @ 0x41..=0x44 => Op::Literal(read_uint(delta, 1 << (op - 0x41))?),
            op @ 0x45..=0x54 => {
                let i = op - 0x45;
                let offset = read_uint(delta, 1 << (i / 4))?;
                let left = read_uint(delta, 1 << (i % 4))?;
                Op::Copy { offset, left }
            }
            op => return Err(bad(format!("unknown delta command 0x{op:02x}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::signature::one_shot as signature;

    fn delta_of(old: &[u8], new: &[u8], chunk: usize) -> Vec<u8> {
        let mut w = DeltaWriter::new(signature(old)).unwrap();
        let mut out = Vec::new();
        for c in new.chunks(chunk.max(1)) {
            w.update(c, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        out
    }

    fn patched(old: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = apply(&mut &old[..], &mut &delta[..], &mut out).unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn unchanged_content_is_copies_but_for_a_short_last_block() {
        // librsync would write one COPY for a 6-byte file; fast_rsync never
        // matches a block shorter than the block length, so the tail is a
        // literal. Both patch to the same file.
        assert_eq!(
            delta_of(b"hello\n", b"hello\n", 64),
            [0x72, 0x73, 0x02, 0x36, 6, b'h', b'e', b'l', b'l', b'o', b'\n', 0]
        );
        let old = pseudo_random(100_000, 9);
        let delta = delta_of(&old, &old, 4096);
        assert!(delta.len() < 1000, "{}", delta.len());
        assert_eq!(patched(&old, &delta), old);
    }

    #[test]
    fn small_changes_give_small_deltas_that_patch_back() {
        let old = pseudo_random(3_500_000, 7);
        let mut new = old.clone();
        new[1_000_000] ^= 1; // one byte changes, as in duplicity's largefile test
        new.splice(2_000_000..2_000_000, b"inserted".iter().copied());
        let delta = delta_of(&old, &new, 100_000);
        assert!(delta.len() < 20_000, "delta of a 1-byte change is {} bytes", delta.len());
        assert_eq!(patched(&old, &delta), new);
    }

    #[test]
    fn segments_concatenate_into_one_valid_delta() {
        // Larger than a segment, with the change near a segment boundary.
        let old = pseudo_random(SEGMENT * 2 + 12_345, 3);
        let mut new = old.clone();
        new[SEGMENT - 3] ^= 0xff;
        new.truncate(SEGMENT * 2);
        let delta = delta_of(&old, &new, 1 << 20);
        assert!(delta.len() < 200_000, "{}", delta.len());
        assert_eq!(patched(&old, &delta), new);
    }

    #[test]
    fn edge_cases_patch_back() {
        for (old, new) in [
            (Vec::new(), Vec::new()),
            (Vec::new(), b"new content".to_vec()),
            (b"old content".to_vec(), Vec::new()),
            (pseudo_random(5000, 1), pseudo_random(7000, 2)),
        ] {
            assert_eq!(patched(&old, &delta_of(&old, &new, 333)), new);
        }
    }

    #[test]
    fn in_order_deltas_apply_to_a_base_read_front_to_back() {
        let old = pseudo_random(300_000, 1);
        let mut new = old.clone();
        new[100_000..120_000].copy_from_slice(&pseudo_random(20_000, 2));
        new.truncate(250_000);
        new.extend_from_slice(&pseudo_random(5_000, 3));
        let delta = delta_of(&old, &new, 4096);
        assert!(copies_in_order(&mut &delta[..]).unwrap());
        let mut stream = &old[..];
        let mut pos = 0;
        let mut out = Vec::new();
        apply(&mut Forward { inner: &mut stream, pos: &mut pos }, &mut &delta[..], &mut out).unwrap();
        assert!(out == new);

        // Moved blocks copy backwards: not in order, and a forward base refuses them.
        let mut moved = old[150_000..].to_vec();
        moved.extend_from_slice(&old[..150_000]);
        let delta = delta_of(&old, &moved, 4096);
        assert!(!copies_in_order(&mut &delta[..]).unwrap());
        let mut stream = &old[..];
        let mut pos = 0;
        let err = apply(&mut Forward { inner: &mut stream, pos: &mut pos }, &mut &delta[..], &mut Vec::new());
        assert!(err.is_err());
        // The whole-file copy of an attribute-only change is in order.
        assert!(copies_in_order(&mut &copy_all(old.len() as u64)[..]).unwrap());
    }

    #[test]
    fn copy_all_gives_the_base_back() {
        // spec §4.3: duplicity's delta for a mode-only change of a 6-byte file.
        assert_eq!(copy_all(6), [0x72, 0x73, 0x02, 0x36, 0x45, 0x00, 0x06, 0x00]);
        assert_eq!(copy_all(0), [0x72, 0x73, 0x02, 0x36, 0x00]);
        assert_eq!(copy_all(300), [0x72, 0x73, 0x02, 0x36, 0x46, 0x00, 0x01, 0x2c, 0x00]);
        assert_eq!(copy_all(1 << 20), [0x72, 0x73, 0x02, 0x36, 0x47, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00]);
        assert_eq!(copy_all(1 << 32)[4..6], [0x48, 0x00]);
        assert_eq!(copy_all(1 << 32).len(), 4 + 2 + 8 + 1);
        for len in [0usize, 1, 255, 256, 70_000] {
            let base = pseudo_random(len, len as u64);
            assert_eq!(patched(&base, &copy_all(len as u64)), base);
        }
        let mut out = Vec::new();
        assert!(apply(&mut &b"short"[..], &mut &copy_all(6)[..], &mut out).is_err(), "a base shorter than the copy");
    }

    #[test]
    fn patches_librsync_copy_widths_and_rejects_garbage() {
        // COPY with 2-byte offset and 4-byte length (0x45 + 4*1 + 2 = 0x4b),
        // then a LITERAL_N1 of 3 bytes.
        let base: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut delta = MAGIC.to_vec();
        delta.extend([0x4b, 0x01, 0x00, 0, 0, 0, 10, 0x41, 3, b'a', b'b', b'c', END]);
        assert_eq!(patched(&base, &delta), [&base[256..266], b"abc"].concat());

        let mut out = Vec::new();
        assert!(apply(&mut &base[..], &mut &b"nope"[..], &mut out).is_err());
        let mut past_end = MAGIC.to_vec();
        past_end.extend([0x45, 250, 100, END]);
        assert!(apply(&mut &base[..200], &mut &past_end[..], &mut out).is_err());
        let mut truncated = MAGIC.to_vec();
        truncated.extend([0x41, 10, b'x']);
        assert!(apply(&mut &base[..], &mut &truncated[..], &mut out).is_err());
    }
}
