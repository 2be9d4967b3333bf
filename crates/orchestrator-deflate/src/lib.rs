//! Deflate that uses every core and does not waste them on data that does not
//! compress.
//!
//! [`ParallelDeflate`] cuts its input into blocks of [`BLOCK`] bytes and
//! compresses them on a pool of threads, each block with a fresh compressor
//! ending in a sync flush, so the outputs concatenate, in order, into one
//! standard raw deflate stream (what pigz does). Before compressing a block, a
//! worker test-compresses a few small samples of it; if they do not shrink,
//! the block is written as stored deflate blocks, which costs nothing, instead
//! of spending 30 ms per MiB finding out that random data stays random.
//! Within a block that is partly noise (small compressed files between
//! text, as in a home directory), each 4 KiB segment whose first bytes look
//! random is stored as it is, so deflate's matcher only runs where it can
//! win.
//!
//! Every inflater reads the result: OpenPGP's ZIP packets are raw deflate, and
//! [`GzipWriter`] wraps the same stream as one gzip member (what Python's
//! `gzip` module, and therefore duplicity, reads).
//!
//! Memory is bounded: at most two blocks per worker in flight, plus their
//! outputs.

mod igzip;
mod inflate;

use flate2::{Compress, Compression, FlushCompress, Status};
use igzip::Igzip;
pub use inflate::{Inflater, Wrapper};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Plaintext per job. Each block restarts the compressor's 32 KiB window, so
/// the ratio lost is a few hundred bytes per block; smaller blocks would
/// spread work more evenly but lose more.
pub const BLOCK: usize = 512 * 1024;

/// Bytes per sample in the compressibility test, and how many samples.
const SAMPLE: usize = 4096;
const SAMPLES: usize = 3;
/// A sample that does not shrink below this share of its size (in percent)
/// counts as incompressible.
const STORE_ABOVE_PERCENT: usize = 97;

/// The unit of the finer test: a segment is noise when the first
/// `PROBE` bytes of it hold at least `NOISY_DISTINCT` distinct byte values.
/// Uniform random bytes give 101 on average (128 draws from 256 values, a
/// standard deviation of about 4), text and most compressible binaries far
/// fewer; the cost is one table update per 32 bytes of input.
const SEGMENT: usize = 4096;
const PROBE: usize = 128;
const NOISY_DISTINCT: usize = 88;

struct Job {
    data: Vec<u8>,
    last: bool,
}

struct Worker {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<io::Result<Vec<u8>>>,
    handle: Option<JoinHandle<()>>,
}

/// A raw deflate stream of everything written, compressed in parallel; see
/// the crate docs. Call [`ParallelDeflate::finish`] to end the stream:
/// dropped without it, the output is an unterminated stream.
pub struct ParallelDeflate<W: Write> {
    /// Taken by `finish`.
    out: Option<W>,
    block: Vec<u8>,
    workers: Vec<Worker>,
    /// Blocks submitted and not yet written, in order: the worker of each.
    pending: VecDeque<usize>,
    next: usize,
    failed: bool,
}

impl<W: Write> ParallelDeflate<W> {
    /// Compress at `level` (0 stores everything, 1 is fastest, 9 smallest)
    /// on as many threads as the machine has cores.
    pub fn new(out: W, level: u32) -> io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(out, level, threads)
    }

    /// The same on `threads` worker threads (at least one).
    pub fn with_threads(out: W, level: u32, threads: usize) -> io::Result<Self> {
        let level = level.min(9);
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let (jobs_tx, jobs_rx) = sync_channel::<Job>(1);
            let (results_tx, results_rx) = sync_channel(2);
            let handle = std::thread::Builder::new()
                .name(format!("deflate-{i}"))
                .spawn(move || work(jobs_rx, results_tx, level))?;
            workers.push(Worker { jobs: Some(jobs_tx), results: results_rx, handle: Some(handle) });
        }
        Ok(ParallelDeflate {
            out: Some(out),
            block: Vec::with_capacity(BLOCK),
            workers,
            pending: VecDeque::new(),
            next: 0,
            failed: false,
        })
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        // Two blocks per worker in flight keep every worker busy while the
        // oldest result is written.
        while self.pending.len() >= 2 * self.workers.len() {
            self.write_oldest()?;
        }
        let data = std::mem::replace(&mut self.block, if last { Vec::new() } else { Vec::with_capacity(BLOCK) });
        let w = self.next % self.workers.len();
        self.next += 1;
        let sent = self.workers[w].jobs.as_ref().is_some_and(|tx| tx.send(Job { data, last }).is_ok());
        if !sent {
            self.failed = true;
            return Err(io::Error::other("a compression thread stopped"));
        }
        self.pending.push_back(w);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(w) = self.pending.pop_front() else { return Ok(()) };
        let result =
            self.workers[w].results.recv().unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")));
        let out = self.out.as_mut().expect("present until finish");
        match result.and_then(|bytes| out.write_all(&bytes)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// End the stream, write everything, and return the output.
    pub fn finish(mut self) -> io::Result<W> {
        if self.failed {
            return Err(io::Error::other("the compressed stream failed earlier"));
        }
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.stop();
        let mut out = self.out.take().expect("present until finish");
        out.flush()?;
        Ok(out)
    }

    fn stop(&mut self) {
        for w in &mut self.workers {
            w.jobs = None;
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl<W: Write> Write for ParallelDeflate<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the compressed stream failed earlier"));
        }
        let take = (BLOCK - self.block.len()).min(data.len());
        self.block.extend_from_slice(&data[..take]);
        if self.block.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(take)
    }

    /// Writes what is compressed so far; a partial block stays buffered,
    /// because cutting it would only cost ratio.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelDeflate<W> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(jobs: Receiver<Job>, results: SyncSender<io::Result<Vec<u8>>>, level: u32) {
    let mut compressor = Compressor::new(level);
    // Samples are tried at the fastest level; at level 1 that is the
    // compressor itself, which starts every fragment afresh anyway.
    let mut trial = (level != 1).then(|| Compressor::new(1));
    while let Ok(job) = jobs.recv() {
        let out = if level == 0 {
            Ok(stored(&job.data, job.last))
        } else {
            let noise = noise_segments(&job.data);
            if noise.iter().all(|&n| !n) {
                compress(&mut compressor, &job.data, job.last)
            } else if noise.iter().all(|&n| n) {
                // Random-looking throughout: stored without a pass through
                // the compressor, unless the samples shrink after all.
                if incompressible(trial.as_mut().unwrap_or(&mut compressor), &job.data) {
                    Ok(stored(&job.data, job.last))
                } else {
                    compress(&mut compressor, &job.data, job.last)
                }
            } else {
                compress_mixed(&mut compressor, &job.data, &noise, job.last)
            }
        };
        if results.send(out).is_err() {
            return;
        }
    }
}

/// What compresses a worker's fragments: igzip for level 1, which is
/// faster and smaller there (see `igzip`), zlib for the levels igzip does
/// not have.
enum Compressor {
    Igzip(Box<Igzip>),
    Zlib(Compress),
}

impl Compressor {
    fn new(level: u32) -> Compressor {
        match level {
            1 => Compressor::Igzip(Box::new(Igzip::new())),
            _ => Compressor::Zlib(Compress::new(Compression::new(level), false)),
        }
    }

    /// Appends `data` to `out` as a fragment that starts afresh (no
    /// reference to earlier bytes) and ends on a byte boundary: with a sync
    /// flush, or as the end of the stream if `last`.
    fn fragment(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Compressor::Igzip(c) => c.fragment(data, last, out),
            Compressor::Zlib(c) => {
                c.reset();
                feed(c, data, out, if last { FlushCompress::Finish } else { FlushCompress::Sync })
            }
        }
    }
}

/// Whether samples from the start, middle and end of `data` fail to shrink.
fn incompressible(trial: &mut Compressor, data: &[u8]) -> bool {
    if data.len() < SAMPLE * SAMPLES * 2 {
        return false;
    }
    let mut sample = Vec::with_capacity(SAMPLE * SAMPLES);
    for i in 0..SAMPLES {
        let at = (data.len() - SAMPLE) * i / (SAMPLES - 1);
        sample.extend_from_slice(&data[at..at + SAMPLE]);
    }
    match compress(trial, &sample, true) {
        Ok(out) => out.len() * 100 > sample.len() * STORE_ABOVE_PERCENT,
        Err(_) => false,
    }
}

/// `data` as a deflate fragment that starts and ends on a byte boundary: a
/// sync flush ends it, or the end of the stream if `last`.
fn compress(c: &mut Compressor, data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    c.fragment(data, last, &mut out)?;
    Ok(out)
}

/// Compress all of `data` into `out`, growing it, then `flush`.
fn feed(c: &mut Compress, data: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> io::Result<()> {
    let start = c.total_in();
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c.compress_vec(&data[consumed..], out, flush).map_err(io::Error::other)?;
        let consumed = (c.total_in() - start) as usize;
        let done = match (status, flush) {
            (Status::StreamEnd, _) => true,
            (_, FlushCompress::Finish) => false,
            // Input taken and, for a flush, the compressor stopped before
            // filling the space it had (so nothing is left inside).
            (_, FlushCompress::None) => consumed == data.len(),
            _ => consumed == data.len() && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
    }
}

/// Whether `probe` holds at least `distinct` different byte values.
fn varied(probe: &[u8], distinct: usize) -> bool {
    let mut seen = [false; 256];
    let mut n = 0;
    for &b in probe {
        let slot = &mut seen[b as usize];
        n += usize::from(!*slot);
        *slot = true;
    }
    n >= distinct
}

/// For each [`SEGMENT`] of `data`, whether it looks like noise.
fn noise_segments(data: &[u8]) -> Vec<bool> {
    data.chunks(SEGMENT).map(|segment| segment.len() >= PROBE && varied(&segment[..PROBE], NOISY_DISTINCT)).collect()
}

/// The finer unit at the edges of noise runs, probed the same way.
const PIECE: usize = 512;

/// `data` as runs `(end, noise)`: segments inside a run keep their class,
/// and a segment at the edge of a noise run is judged piece by piece, so
/// text next to a random file is not stored with it.
fn noise_runs(data: &[u8], noise: &[bool]) -> Vec<(usize, bool)> {
    let mut runs: Vec<(usize, bool)> = Vec::new();
    let mut push = |end: usize, class: bool| match runs.last_mut() {
        Some((last_end, last_class)) if *last_class == class => *last_end = end,
        _ => runs.push((end, class)),
    };
    for (i, &class) in noise.iter().enumerate() {
        let start = i * SEGMENT;
        let end = (start + SEGMENT).min(data.len());
        let edge = (i > 0 && noise[i - 1] != class) || (i + 1 < noise.len() && noise[i + 1] != class);
        if !edge {
            push(end, class);
            continue;
        }
        for piece_start in (start..end).step_by(PIECE) {
            let piece = &data[piece_start..(piece_start + PIECE).min(end)];
            let class = piece.len() >= PROBE && varied(&piece[..PROBE], NOISY_DISTINCT);
            push(piece_start + piece.len(), class);
        }
    }
    runs
}

/// [`compress`], with the runs of noise segments as stored blocks. Each
/// run of the rest starts a fresh compressor: it cannot know the stored
/// bytes before it, so it must not reach back past them. (Switching the
/// level mid-stream would keep the window, but needs an output buffer
/// inside `deflateParams` that flate2 does not give it.)
fn compress_mixed(c: &mut Compressor, data: &[u8], noise: &[bool], last: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    let mut at = 0;
    for (end, noise) in noise_runs(data, noise) {
        if noise {
            stored_into(&mut out, &data[at..end], false);
        } else {
            c.fragment(&data[at..end], false, &mut out)?;
        }
        at = end;
    }
    if last {
        stored_into(&mut out, &[], true);
    }
    Ok(out)
}

/// `data` as stored deflate blocks (the final one if `last`).
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65_535 + 1));
    stored_into(&mut out, data, last);
    out
}

/// Append `data` as stored deflate blocks (the final one if `last`; an
/// empty final block when there is no data).
fn stored_into(out: &mut Vec<u8>, data: &[u8], last: bool) {
    const MAX: usize = 65_535;
    if data.is_empty() {
        if last {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        return;
    }
    let mut chunks = data.chunks(MAX).peekable();
    while let Some(chunk) = chunks.next() {
        let is_final = last && chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(is_final));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// One gzip member (RFC 1952) around a [`ParallelDeflate`] stream.
pub struct GzipWriter<W: Write> {
    deflate: ParallelDeflate<W>,
    crc: crc32fast::Hasher,
    size: u64,
}

impl<W: Write> GzipWriter<W> {
    /// Start a gzip member at `level`; the header is written at once.
    pub fn new(mut out: W, level: u32) -> io::Result<Self> {
        // No name, no mtime, OS unknown: the bytes depend only on the data.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(GzipWriter { deflate: ParallelDeflate::new(out, level)?, crc: crc32fast::Hasher::new(), size: 0 })
    }

    /// End the member (CRC-32 and size) and return the output.
    pub fn finish(self) -> io::Result<W> {
        let GzipWriter { deflate, crc, size } = self;
        let mut out = deflate.finish()?;
        out.write_all(&crc.finalize().to_le_bytes())?;
        out.write_all(&(size as u32).to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.deflate.write(data)?;
        self.crc.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
