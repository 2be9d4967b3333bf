//! Inflating with ISA-L's igzip: about twice zlib-rs's speed on what our
//! backups and GnuPG write, and restoring a volume inflates every byte of it
//! on one thread.

// ISA-L is C; its inflate state is driven through raw pointers here only.
#![allow(unsafe_code)]

use isal_sys::igzip_lib as ffi;
use std::io::{self, BufRead, Read};

/// Output buffer: large enough that a call to ISA-L is worth it.
const OUT: usize = 256 * 1024;

/// How the deflate stream is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrapper {
    /// Raw deflate (RFC 1951), as in OpenPGP's ZIP packets.
    Raw,
    /// A zlib stream (RFC 1950), as in OpenPGP's ZLIB packets; its Adler-32 is checked.
    Zlib,
}

/// A reader of what the deflate stream read from `inner` inflates to.
///
/// It ends where the stream ends. ISA-L reads ahead, so up to a few bytes
/// of what follows the stream in `inner` may be consumed. A damaged stream
/// is an error of kind `InvalidData`, and so is input that ends before the
/// stream does.
pub struct Inflater<R: BufRead> {
    inner: R,
    // Boxed: ISA-L's state is large (its window is inside) and must not move
    // while a call runs.
    state: Box<ffi::inflate_state>,
    out: Box<[u8]>,
    start: usize,
    end: usize,
    done: bool,
}

// SAFETY: the state's only pointers, `next_in` and `next_out`, are set for
// one call of `isal_inflate` and null between calls; the rest is plain data
// with no tie to a thread.
unsafe impl<R: BufRead + Send> Send for Inflater<R> {}

impl<R: BufRead> Inflater<R> {
    /// Inflates the stream `inner` holds, wrapped as `wrapper` says.
    pub fn new(inner: R, wrapper: Wrapper) -> Inflater<R> {
        // SAFETY: `inflate_state` is a plain C struct for which all zeroes is
        // a valid value, and `isal_inflate_init` then sets what it reads.
        let mut state: Box<ffi::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: a valid, exclusively borrowed state.
        unsafe { ffi::isal_inflate_init(&mut *state) };
        state.crc_flag = match wrapper {
            Wrapper::Raw => ffi::ISAL_DEFLATE,
            Wrapper::Zlib => ffi::ISAL_ZLIB,
        };
        Inflater { inner, state, out: vec![0; OUT].into_boxed_slice(), start: 0, end: 0, done: false }
    }

    /// The input, read up to the stream's end (and perhaps a little past
    /// it) once [`Read`] returned that end.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Inflates more into the empty output buffer; `Ok(false)` at the end.
    fn refill(&mut self) -> io::Result<bool> {
        while !self.done {
            let input = self.inner.fill_buf()?;
            let ended = input.is_empty();
            let len = input.len().min(u32::MAX as usize);
            let s = &mut *self.state;
            // ISA-L only reads through `next_in`; it is mutable in C's declaration only.
            s.next_in = input.as_ptr().cast_mut();
            s.avail_in = len as u32;
            s.next_out = self.out.as_mut_ptr();
            s.avail_out = self.out.len() as u32;
            // SAFETY: `next_in`/`avail_in` describe the input buffer and
            // `next_out`/`avail_out` the output buffer, both alive and
            // unaliased during the call; ISA-L keeps its window in `state`.
            let code = unsafe { ffi::isal_inflate(s) };
            let consumed = len - s.avail_in as usize;
            let produced = self.out.len() - s.avail_out as usize;
            let finished = s.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH;
            s.next_in = std::ptr::null_mut();
            s.next_out = std::ptr::null_mut();
            self.inner.consume(consumed);
            if code < 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, damage(code)));
            }
            self.done = finished;
            if produced > 0 {
                self.start = 0;
                self.end = produced;
                return Ok(true);
            }
            if ended && !finished {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "the compressed data ends early"));
            }
            if consumed == 0 && !finished {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "inflating the compressed data is stuck"));
            }
        }
        Ok(false)
    }
}

fn damage(code: i32) -> String {
    let what = match code {
        ffi::ISAL_INVALID_BLOCK => "an invalid block",
        ffi::ISAL_INVALID_SYMBOL => "an invalid symbol",
        ffi::ISAL_INVALID_LOOKBACK => "a reference before its start",
        ffi::ISAL_INVALID_WRAPPER => "an invalid zlib header",
        ffi::ISAL_INCORRECT_CHECKSUM => "a wrong checksum",
        _ => "an error",
    };
    format!("the compressed data is damaged: inflating it found {what} (igzip code {code})")
}

impl<R: BufRead> Read for Inflater<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Inflater<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end && !self.refill()? {
            return Ok(&[]);
        }
        Ok(&self.out[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }
}
