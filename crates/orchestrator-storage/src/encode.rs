//! Objects on their way between a plugin and a backend: encoded (gzip,
//! OpenPGP) natively by the host, hashed and counted as stored.
//!
//! Writing runs the encoder on its own thread, fed through a short bounded
//! queue: compressing or encrypting a volume then overlaps with the plugin
//! producing the next chunk (on two cores, the sink and the encoder each get
//! one), and memory stays at a few chunks whatever the object's size.

use crate::{Encoding, KeyRing, ObjectSink, StorageError, StoredObject};
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Chunks queued between the plugin and the encoder thread, and between the
/// encoder and the store thread. Eight, not four: with seven threads sharing
/// two cores, the deeper queues ride out the moments one stage is descheduled
/// (full backup 2.24 -> 2.17 s, for 14 MiB more).
const QUEUE: usize = 8;

/// The stored bytes of an object: passed to the backend, hashed and counted,
/// so the SHA-1 a sink records is of exactly what the target holds.
struct Hashing {
    sink: Box<dyn ObjectSink>,
    hash: Sha1,
    size: u64,
}

impl Hashing {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.sink.write(data)?;
        self.hash.update(data);
        self.size += data.len() as u64;
        Ok(())
    }
}

/// Bytes batched on their way to the thread that hashes and stores them.
const STORE_BATCH: usize = 1 << 20;

/// The encoder's output: batched and handed to a thread of its own that
/// hashes and stores it, so hashing and the backend's writes overlap with
/// compressing and encrypting (for incompressible data, AES and the MDC alone
/// keep one core busy).
struct Stored {
    /// Buffers and where their bytes start.
    tx: Option<SyncSender<(Vec<u8>, usize)>>,
    batch: Vec<u8>,
    worker: Option<JoinHandle<Result<Hashing, StorageError>>>,
}

impl Stored {
    fn start(mut hashing: Hashing) -> Result<Stored, StorageError> {
        let (tx, rx) = sync_channel::<(Vec<u8>, usize)>(QUEUE);
        let worker = std::thread::Builder::new()
            .name("object-store".into())
            .spawn(move || {
                for (batch, start) in rx {
                    hashing.write(&batch[start..])?;
                }
                Ok(hashing)
            })
            .map_err(|e| StorageError::Io(format!("cannot start a storage thread: {e}")))?;
        Ok(Stored { tx: Some(tx), batch: Vec::with_capacity(STORE_BATCH), worker: Some(worker) })
    }

    fn send(&mut self) -> std::io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(STORE_BATCH));
        self.send_owned(batch, 0)
    }

    fn send_owned(&mut self, buf: Vec<u8>, start: usize) -> std::io::Result<()> {
        match self.tx.as_ref().map(|tx| tx.send((buf, start))) {
            Some(Ok(())) => Ok(()),
            // The worker stopped on an error, which says why (a full disk).
            _ => Err(std::io::Error::other(match self.join() {
                Err(e) => e.describe(),
                Ok(_) => "the storage thread stopped".to_string(),
            })),
        }
    }

    fn join(&mut self) -> Result<Hashing, StorageError> {
        self.tx = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(StorageError::Other("the storage thread failed".into())),
            None => Err(StorageError::Other("the storage thread stopped".into())),
        }
    }

    /// Everything written is stored: the hashed, counted, uncommitted object.
    fn finish(mut self) -> Result<Hashing, StorageError> {
        if !self.batch.is_empty() {
            self.send().map_err(|e| StorageError::Io(e.to_string()))?;
        }
        self.join()
    }
}

impl Write for Stored {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.batch.is_empty() && data.len() >= STORE_BATCH {
            self.batch = data.to_vec();
        } else {
            self.batch.extend_from_slice(data);
        }
        if self.batch.len() >= STORE_BATCH {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The sealer's encrypted chunks arrive whole: they go to the store thread as they are.
impl orchestrator_openpgp::OwnedWrite for Stored {
    fn write_owned(&mut self, buf: Vec<u8>, start: usize) -> std::io::Result<()> {
        if buf.len() - start < STORE_BATCH / 16 {
            return self.write_all(&buf[start..]);
        }
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.send_owned(buf, start)
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        // Without `finish`, the worker ends and drops the uncommitted object,
        // which removes its temporary file.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

enum Msg {
    Data(Vec<u8>),
    Finish,
}

/// The encoder between the plugin's plaintext and the stored bytes.
enum Encoder {
    Plain(Stored),
    Gzip(Box<orchestrator_deflate::GzipWriter<Stored>>),
    Openpgp(Box<orchestrator_openpgp::Sealer<Stored>>),
}

impl Encoder {
    fn new(stored: Stored, encoding: &Encoding, keys: &KeyRing) -> Result<Encoder, StorageError> {
        Ok(match encoding {
            Encoding::None => Encoder::Plain(stored),
            Encoding::Gzip => Encoder::Gzip(Box::new(
                orchestrator_deflate::GzipWriter::new(stored, keys.compression_level())
                    .map_err(|e| StorageError::Io(format!("cannot start compressing: {e}")))?,
            )),
            Encoding::Openpgp(k) => {
                let key = keys.sealing_key(k)?;
                let sealer = orchestrator_openpgp::Sealer::with_key(stored, &key)
                    .map_err(|e| StorageError::Other(format!("cannot start encrypting: {e}")))?;
                Encoder::Openpgp(Box::new(sealer))
            }
        })
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(h) => h.write_all(data),
            Encoder::Gzip(gz) => gz.write_all(data),
            Encoder::Openpgp(s) => s.write_all(data),
        }
    }

    fn finish(self) -> std::io::Result<Stored> {
        match self {
            Encoder::Plain(h) => Ok(h),
            Encoder::Gzip(gz) => gz.finish(),
            Encoder::Openpgp(s) => s.finish().map_err(std::io::Error::other),
        }
    }
}

fn run_encoder(name: &str, mut encoder: Encoder, rx: Receiver<Msg>) -> Result<StoredObject, StorageError> {
    let failed = |e: std::io::Error| StorageError::Io(format!("writing {name}: {e}"));
    loop {
        match rx.recv() {
            Ok(Msg::Data(d)) => encoder.write_all(&d).map_err(failed)?,
            Ok(Msg::Finish) => break,
            // The writer was dropped without finish: the backend's sink
            // discards the temporary object when it is dropped here.
            Err(_) => return Err(StorageError::Other(format!("{name} was abandoned"))),
        }
    }
    let Hashing { sink, hash, size } = encoder.finish().map_err(failed)?.finish()?;
    sink.commit()?;
    Ok(StoredObject { name: name.to_string(), size, sha1: hex::encode(hash.finalize()) })
}

/// An object being written for a plugin.
pub struct ObjectWriter {
    name: String,
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<Result<StoredObject, StorageError>>>,
}

impl ObjectWriter {
    /// Write `name` into `sink`, encoded.
    pub fn start(
        name: &str,
        sink: Box<dyn ObjectSink>,
        encoding: &Encoding,
        keys: &KeyRing,
    ) -> Result<ObjectWriter, StorageError> {
        let stored = Stored::start(Hashing { sink, hash: Sha1::new(), size: 0 })?;
        let encoder = Encoder::new(stored, encoding, keys)?;
        let (tx, rx) = sync_channel(QUEUE);
        let owned = name.to_string();
        let worker = std::thread::Builder::new()
            .name("object-encoder".into())
            .spawn(move || run_encoder(&owned, encoder, rx))
            .map_err(|e| StorageError::Io(format!("cannot start an encoder thread: {e}")))?;
        Ok(ObjectWriter { name: name.to_string(), tx: Some(tx), worker: Some(worker) })
    }

    /// The worker's outcome (it has stopped or is told to stop).
    fn join(&mut self) -> Result<StoredObject, StorageError> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w.join().unwrap_or_else(|_| Err(StorageError::Other(format!("encoding {} failed", self.name)))),
            None => Err(StorageError::Other("object already finished".into())),
        }
    }

    /// Append plaintext.
    pub fn write(&mut self, data: Vec<u8>) -> Result<(), StorageError> {
        let Some(tx) = &self.tx else { return Err(StorageError::Other("object already finished".into())) };
        if tx.send(Msg::Data(data)).is_err() {
            // The worker stopped early: its error says why.
            return Err(self.join().err().unwrap_or_else(|| StorageError::Other("encoder stopped".into())));
        }
        Ok(())
    }

    /// Encode the rest, store durably, and make the object visible.
    pub fn finish(&mut self) -> Result<StoredObject, StorageError> {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Finish);
        }
        self.join()
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Closing the queue without `Finish` makes the worker discard the
        // object; waiting for it keeps no thread or temporary file behind.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Decoded objects smaller than this are decoded whole when opened, on the
/// caller's thread, and their decoder (buffers, threads) is gone before the
/// first read. A long chain's sets are opened all at once (their streams are
/// merged by index) and most are small incrementals: they then cost their
/// few decoded bytes each, not a decoder each.
const WHOLE: usize = 256 << 10;

/// Larger objects streaming now in this process.
static STREAMING: AtomicUsize = AtomicUsize::new(0);
/// How many streaming objects read ahead deeply; the others decode in small
/// chunks, one ahead, so a chain of large sets stays bounded too.
const DEEP: usize = 4;

/// How far ahead an object is decoded, and in what chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadAhead {
    queue: usize,
    chunk: usize,
}

impl ReadAhead {
    /// What an object opened now gets.
    fn now() -> ReadAhead {
        if STREAMING.load(Ordering::Relaxed) < DEEP {
            ReadAhead { queue: QUEUE, chunk: 1 << 20 }
        } else {
            ReadAhead { queue: 1, chunk: 64 << 10 }
        }
    }
}

/// One streaming object, counted in [`STREAMING`] while it lives.
struct Streaming;

impl Streaming {
    fn new() -> Streaming {
        STREAMING.fetch_add(1, Ordering::Relaxed);
        Streaming
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        STREAMING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What turns stored bytes into the object's bytes.
enum Decoder {
    /// Not a `BufRead` (gzip).
    Read(Box<dyn Read + Send>),
    /// A `BufRead` (an opened OpenPGP message): its buffer is appended to
    /// each chunk, so no chunk is zeroed before it is filled.
    Buffered(Box<dyn std::io::BufRead + Send>),
}

impl Decoder {
    /// Up to `size` decoded bytes; fewer only at the end.
    fn chunk(&mut self, size: usize) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::Read(inner) => crate::fill_expecting(inner, size as u32, size),
            Decoder::Buffered(inner) => {
                let mut chunk = Vec::with_capacity(size);
                orchestrator_openpgp::append_from(&mut **inner, &mut chunk, size)?;
                Ok(chunk)
            }
        }
    }
}

/// Decoded bytes produced on a thread of their own, a few chunks ahead of the
/// reader: inflating and decrypting a volume then overlaps with the plugin
/// parsing the previous chunk and the host writing restored files.
pub struct Prefetch {
    _streaming: Streaming,
    rx: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    /// A failure is reported on every later read too, never as a clean end.
    failed: Option<(std::io::ErrorKind, String)>,
}

impl Prefetch {
    /// Go on decoding `decoder`, whose first decoded bytes are `head`.
    fn start(head: Vec<u8>, mut decoder: Decoder, ahead: ReadAhead) -> Result<Prefetch, StorageError> {
        let (tx, rx) = sync_channel(ahead.queue);
        std::thread::Builder::new()
            .name("object-decoder".into())
            .spawn(move || {
                loop {
                    let chunk = decoder.chunk(ahead.chunk);
                    let end = matches!(&chunk, Ok(c) if c.is_empty()) || chunk.is_err();
                    // A closed queue means the reader was dropped: stop.
                    if tx.send(chunk).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|e| StorageError::Io(format!("cannot start a decoder thread: {e}")))?;
        Ok(Prefetch { _streaming: Streaming::new(), rx, chunk: head, pos: 0, done: false, failed: None })
    }
}

impl Prefetch {
    /// Up to `max` decoded bytes; empty at the end. A whole decoded chunk is
    /// handed over as it is, without copying it.
    fn read_chunk(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        if !self.next()? {
            return Ok(Vec::new());
        }
        if self.pos == 0 && self.chunk.len() <= max {
            return Ok(std::mem::take(&mut self.chunk));
        }
        let n = max.min(self.chunk.len() - self.pos);
        let out = self.chunk[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// Make sure a chunk with unread bytes is at hand; `false` at the end.
    fn next(&mut self) -> std::io::Result<bool> {
        while self.pos == self.chunk.len() {
            if let Some((kind, message)) = &self.failed {
                return Err(std::io::Error::new(*kind, message.clone()));
            }
            if self.done {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                Err(_) => return Err(std::io::Error::other("the decoder thread stopped")),
            }
        }
        Ok(true)
    }
}

impl Read for Prefetch {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.next()? {
            return Ok(0);
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An object being read for a plugin: the stored bytes as they are, a small
/// object decoded whole, or a large one decoded on a thread of its own.
pub enum ObjectReader {
    Raw(Box<dyn Read + Send>),
    Whole(std::io::Cursor<Vec<u8>>),
    Decoded(Prefetch),
    /// Decoding failed before the first read: every read says why.
    Failed(std::io::ErrorKind, String),
}

impl ObjectReader {
    /// Read `raw` (the stored bytes), decoded.
    pub fn start(
        raw: Box<dyn Read + Send + Sync>,
        encoding: &Encoding,
        keys: &KeyRing,
    ) -> Result<ObjectReader, StorageError> {
        let ahead = ReadAhead::now();
        let input = |raw| std::io::BufReader::with_capacity(ahead.chunk, raw);
        let mut decoder = match encoding {
            Encoding::None => return Ok(ObjectReader::Raw(raw)),
            Encoding::Gzip => Decoder::Read(Box::new(flate2::read::MultiGzDecoder::new(input(raw)))),
            Encoding::Openpgp(k) => {
                let key = keys.open_key(k)?;
                let message = orchestrator_openpgp::open(input(raw), &key).map_err(|e| keys.describe_open_error(e))?;
                Decoder::Buffered(Box::new(message))
            }
        };
        // One byte past WHOLE tells a whole object from the head of a larger one.
        Ok(match decoder.chunk(WHOLE + 1) {
            Ok(mut head) if head.len() <= WHOLE => {
                // Its room for WHOLE + 1 bytes would stay with it otherwise.
                head.shrink_to_fit();
                ObjectReader::Whole(std::io::Cursor::new(head))
            }
            Ok(head) => ObjectReader::Decoded(Prefetch::start(head, decoder, ahead)?),
            Err(e) => ObjectReader::Failed(e.kind(), e.to_string()),
        })
    }

    /// Up to `max` decoded bytes; empty at the end.
    pub fn read(&mut self, max: u32) -> Result<Vec<u8>, StorageError> {
        let max = max.min(crate::MAX_READ);
        match self {
            ObjectReader::Raw(r) => crate::fill(r, max),
            ObjectReader::Whole(c) if c.position() == 0 && c.get_ref().len() <= max as usize => {
                Ok(std::mem::take(c.get_mut()))
            }
            ObjectReader::Whole(c) => {
                let rest = &c.get_ref()[c.position() as usize..];
                let n = rest.len().min(max as usize);
                let out = rest[..n].to_vec();
                c.set_position(c.position() + n as u64);
                Ok(out)
            }
            ObjectReader::Decoded(p) => p.read_chunk(max as usize),
            ObjectReader::Failed(kind, message) => Err(std::io::Error::new(*kind, message.clone())),
        }
        .map_err(|e| {
            // A damaged or wrongly keyed message shows up while reading.
            if e.kind() == std::io::ErrorKind::InvalidData {
                StorageError::Corrupt(format!("reading an object: {e}"))
            } else {
                StorageError::Io(format!("reading an object: {e}"))
            }
        })
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ObjectReader::Raw(r) => r.read(buf),
            ObjectReader::Whole(c) => c.read(buf),
            ObjectReader::Decoded(p) => p.read(buf),
            ObjectReader::Failed(kind, message) => Err(std::io::Error::new(*kind, message.clone())),
        }
    }
}
