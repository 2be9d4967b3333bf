//! The compressed packet (RFC 4880 §5.6) that a decrypted message starts with, inflated
//! here when it is ZIP or ZLIB (what GnuPG and we write), by ISA-L through
//! `orchestrator-deflate`: inflating is the larger part of opening a volume, on one thread,
//! and ISA-L does it in about half zlib-rs's time. rPGP then parses the packets inside (the
//! literal data, signatures) as usual. Anything else (BZip2, no compression, a first packet
//! that is not compressed) is left to rPGP untouched.

use std::{
    fmt,
    io::{self, BufRead, Read},
};

use orchestrator_deflate::{Inflater, Wrapper};

/// The compressed packet's tag.
const COMPRESSED: u8 = 8;

/// How much of a packet's body is known to follow.
#[derive(Clone, Copy, Debug)]
enum Length {
    /// This many bytes, the last part.
    Last(u64),
    /// This many bytes, then another length (a partial body length).
    Part(u64),
    /// Up to the end of the input (an old-format packet of indeterminate length).
    ToEnd,
}

/// If `plaintext` starts with a ZIP or ZLIB compressed packet, the packets it inflates to;
/// otherwise `plaintext` itself, nothing read from it.
pub(crate) fn inflated<R: BufRead>(mut plaintext: R) -> io::Result<Result<Inflated<R>, R>> {
    let head = plaintext.fill_buf()?;
    // The header and the algorithm octet, when the first chunk holds them (it always does
    // but for a message of a few bytes; those go to rPGP).
    let Some((header_len, length)) = header(head) else { return Ok(Err(plaintext)) };
    let wrapper = match head.get(header_len) {
        Some(1) => Wrapper::Raw,
        Some(2) => Wrapper::Zlib,
        _ => return Ok(Err(plaintext)),
    };
    let length = match length {
        Length::Last(0) | Length::Part(0) => return Ok(Err(plaintext)),
        Length::Last(n) => Length::Last(n - 1),
        Length::Part(n) => Length::Part(n - 1),
        Length::ToEnd => Length::ToEnd,
    };
    plaintext.consume(header_len + 1);
    let body = PacketBody { inner: plaintext, length };
    Ok(Ok(Inflated { inflater: Inflater::new(body, wrapper), checked: false }))
}

/// The length of a compressed packet's header at the start of `b`, and its body length.
fn header(b: &[u8]) -> Option<(usize, Length)> {
    let first = *b.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    if first & 0x40 != 0 {
        if first & 0x3f != COMPRESSED {
            return None;
        }
        let (n, length) = new_length(&b[1..])?;
        return Some((1 + n, length));
    }
    if (first >> 2) & 0x0f != COMPRESSED {
        return None;
    }
    let octets = match first & 3 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return Some((1, Length::ToEnd)),
    };
    let bytes = b.get(1..1 + octets)?;
    let n = bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    Some((1 + octets, Length::Last(n)))
}

/// A new-format body length (RFC 4880 §4.2.2) at the start of `b`: its size and value.
fn new_length(b: &[u8]) -> Option<(usize, Length)> {
    let first = *b.first()?;
    Some(match first {
        0..192 => (1, Length::Last(u64::from(first))),
        192..224 => (2, Length::Last((u64::from(first - 192) << 8) + u64::from(*b.get(1)?) + 192)),
        224..255 => (1, Length::Part(1 << (first & 0x1f))),
        255 => {
            let n = b.get(1..5)?.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
            (5, Length::Last(n))
        }
    })
}

/// The body of the compressed packet, across its partial lengths.
struct PacketBody<R> {
    inner: R,
    length: Length,
}

impl<R: BufRead> PacketBody<R> {
    /// Reads the next partial length when the current part is used up; whether body is left.
    fn next_part(&mut self) -> io::Result<bool> {
        loop {
            match self.length {
                Length::ToEnd => return Ok(true),
                Length::Last(0) => return Ok(false),
                Length::Last(_) => return Ok(true),
                Length::Part(0) => {
                    // At most five octets, which may straddle the decrypted chunks.
                    let mut octets = Vec::with_capacity(5);
                    let (n, length) = loop {
                        if let Some(parsed) = new_length(&octets) {
                            break parsed;
                        }
                        let mut one = [0u8];
                        self.inner.read_exact(&mut one)?;
                        octets.push(one[0]);
                    };
                    debug_assert_eq!(n, octets.len());
                    self.length = length;
                }
                Length::Part(_) => return Ok(true),
            }
        }
    }

    fn left(&self) -> u64 {
        match self.length {
            Length::Last(n) | Length::Part(n) => n,
            Length::ToEnd => u64::MAX,
        }
    }
}

impl<R: BufRead> Read for PacketBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::open::read_buffered(self, buf)
    }
}

impl<R: BufRead> BufRead for PacketBody<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.next_part()? {
            return Ok(&[]);
        }
        let left = self.left();
        let to_end = matches!(self.length, Length::ToEnd);
        let available = self.inner.fill_buf()?;
        if available.is_empty() && !to_end {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the compressed packet is cut short"));
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(available.len());
        Ok(&available[..n])
    }

    fn consume(&mut self, n: usize) {
        match &mut self.length {
            Length::Last(left) | Length::Part(left) => *left -= n as u64,
            Length::ToEnd => {}
        }
        self.inner.consume(n);
    }
}

/// The inflated packets of a compressed packet (see [`inflated`]). Their end is returned
/// only after the rest of the packet was read and the plaintext ended right after it, so
/// whatever ends the plaintext (the MDC check) has happened first.
pub(crate) struct Inflated<R: BufRead> {
    inflater: Inflater<PacketBody<R>>,
    checked: bool,
}

impl<R: BufRead> Inflated<R> {
    fn check_end(&mut self) -> io::Result<()> {
        let body = self.inflater.get_mut();
        // Bytes after the deflate stream inside the packet are ignored, as zlib does.
        loop {
            let n = body.fill_buf()?.len();
            if n == 0 {
                break;
            }
            body.consume(n);
        }
        if !body.inner.fill_buf()?.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "data follows the compressed packet"));
        }
        self.checked = true;
        Ok(())
    }
}

impl<R: BufRead> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::open::read_buffered(self, buf)
    }
}

impl<R: BufRead> BufRead for Inflated<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.checked && self.inflater.fill_buf()?.is_empty() {
            self.check_end()?;
        }
        self.inflater.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inflater.consume(n);
    }
}

impl<R: BufRead> fmt::Debug for Inflated<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflated").field("checked", &self.checked).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_both_formats() {
        // New format, partial body of 2^16.
        assert!(matches!(header(&[0xc8, 0xf0, 1]), Some((2, Length::Part(65536)))));
        // New format, two-octet and five-octet lengths.
        assert!(matches!(header(&[0xc8, 0xc0, 0x00, 1]), Some((3, Length::Last(192)))));
        assert!(matches!(header(&[0xc8, 0xff, 0, 1, 0, 0, 1]), Some((6, Length::Last(65536)))));
        // Old format as GnuPG writes it: indeterminate length.
        assert!(matches!(header(&[0xa3, 1]), Some((1, Length::ToEnd))));
        // Old format with a two-octet length.
        assert!(matches!(header(&[0xa1, 0x01, 0x00, 1]), Some((3, Length::Last(256)))));
        // A literal packet, and a cut-off header, are not ours.
        assert!(header(&[0xcb, 10]).is_none());
        assert!(header(&[0xc8]).is_none());
        assert!(header(&[0xc8, 0xff, 0]).is_none());
    }
}
