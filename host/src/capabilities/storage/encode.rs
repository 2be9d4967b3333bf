//! Objects on their way between a plugin and a backend: encoded (gzip,
//! OpenPGP) natively by the host, hashed and counted as stored.
//!
//! Writing runs the encoder on its own thread, fed through a short bounded
//! queue: compressing or encrypting a volume then overlaps with the plugin
//! producing the next chunk (on two cores, the sink and the encoder each get
//! one), and memory stays at a few chunks whatever the object's size.

use super::ObjectSink;
use super::keys::KeyRing;
use crate::runtime::bindings::PluginError;
use crate::runtime::bindings::sink::orchestrator::plugin::storage as wit;
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Chunks queued between the plugin and the encoder thread.
const QUEUE: usize = 4;

/// The stored bytes of an object: passed to the backend, hashed and counted,
/// so the SHA-1 a sink records is of exactly what the target holds.
struct Hashing {
    sink: Box<dyn ObjectSink>,
    hash: Sha1,
    size: u64,
}

impl Write for Hashing {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.sink.write(data).map_err(|e| std::io::Error::other(e.describe()))?;
        self.hash.update(data);
        self.size += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Msg {
    Data(Vec<u8>),
    Finish,
}

/// The encoder between the plugin's plaintext and the stored bytes.
enum Encoder {
    Plain(Hashing),
    Gzip(Box<orchestrator_deflate::GzipWriter<Hashing>>),
    Openpgp(Box<orchestrator_openpgp::Sealer<Hashing>>),
}

impl Encoder {
    fn new(stored: Hashing, encoding: &wit::Encoding, keys: &KeyRing) -> Result<Encoder, PluginError> {
        Ok(match encoding {
            wit::Encoding::None => Encoder::Plain(stored),
            wit::Encoding::Gzip => Encoder::Gzip(Box::new(
                orchestrator_deflate::GzipWriter::new(stored, keys.compression_level())
                    .map_err(|e| PluginError::Io(format!("cannot start compressing: {e}")))?,
            )),
            wit::Encoding::Openpgp(k) => {
                let key = keys.sealing_key(k)?;
                let sealer = orchestrator_openpgp::Sealer::with_key(stored, &key)
                    .map_err(|e| PluginError::Other(format!("cannot start encrypting: {e}")))?;
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

    fn finish(self) -> std::io::Result<Hashing> {
        match self {
            Encoder::Plain(h) => Ok(h),
            Encoder::Gzip(gz) => gz.finish(),
            Encoder::Openpgp(s) => s.finish().map_err(std::io::Error::other),
        }
    }
}

fn run_encoder(name: &str, mut encoder: Encoder, rx: Receiver<Msg>) -> Result<wit::StoredObject, PluginError> {
    let failed = |e: std::io::Error| PluginError::Io(format!("writing {name}: {e}"));
    loop {
        match rx.recv() {
            Ok(Msg::Data(d)) => encoder.write_all(&d).map_err(failed)?,
            Ok(Msg::Finish) => break,
            // The writer was dropped without finish: the backend's sink
            // discards the temporary object when it is dropped here.
            Err(_) => return Err(PluginError::Other(format!("{name} was abandoned"))),
        }
    }
    let Hashing { sink, hash, size } = encoder.finish().map_err(failed)?;
    sink.commit()?;
    Ok(wit::StoredObject { name: name.to_string(), size, sha1: hex::encode(hash.finalize()) })
}

/// An object being written for a plugin.
pub struct ObjectWriter {
    name: String,
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<Result<wit::StoredObject, PluginError>>>,
}

impl ObjectWriter {
    /// Write `name` into `sink`, encoded.
    pub fn start(
        name: &str,
        sink: Box<dyn ObjectSink>,
        encoding: &wit::Encoding,
        keys: &KeyRing,
    ) -> Result<ObjectWriter, PluginError> {
        let encoder = Encoder::new(Hashing { sink, hash: Sha1::new(), size: 0 }, encoding, keys)?;
        let (tx, rx) = sync_channel(QUEUE);
        let owned = name.to_string();
        let worker = std::thread::Builder::new()
            .name("object-encoder".into())
            .spawn(move || run_encoder(&owned, encoder, rx))
            .map_err(|e| PluginError::Io(format!("cannot start an encoder thread: {e}")))?;
        Ok(ObjectWriter { name: name.to_string(), tx: Some(tx), worker: Some(worker) })
    }

    /// The worker's outcome (it has stopped or is told to stop).
    fn join(&mut self) -> Result<wit::StoredObject, PluginError> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w.join().unwrap_or_else(|_| Err(PluginError::Other(format!("encoding {} failed", self.name)))),
            None => Err(PluginError::Other("object already finished".into())),
        }
    }

    /// Append plaintext.
    pub fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        let Some(tx) = &self.tx else { return Err(PluginError::Other("object already finished".into())) };
        if tx.send(Msg::Data(data.to_vec())).is_err() {
            // The worker stopped early: its error says why.
            return Err(self.join().err().unwrap_or_else(|| PluginError::Other("encoder stopped".into())));
        }
        Ok(())
    }

    /// Encode the rest, store durably, and make the object visible.
    pub fn finish(&mut self) -> Result<wit::StoredObject, PluginError> {
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

/// Decoded bytes produced on a thread of their own, a few chunks ahead of the
/// reader: inflating and decrypting a volume then overlaps with the plugin
/// parsing the previous chunk and the host writing restored files.
struct Prefetch {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    /// A failure is reported on every later read too, never as a clean end.
    failed: Option<(std::io::ErrorKind, String)>,
}

impl Prefetch {
    const CHUNK: usize = 1 << 20;

    fn start(mut inner: Box<dyn Read + Send>) -> Result<Prefetch, PluginError> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("object-decoder".into())
            .spawn(move || {
                loop {
                    let chunk = crate::capabilities::fill(&mut inner, Self::CHUNK as u32);
                    let end = matches!(&chunk, Ok(c) if c.is_empty()) || chunk.is_err();
                    // A closed queue means the reader was dropped: stop.
                    if tx.send(chunk).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|e| PluginError::Io(format!("cannot start a decoder thread: {e}")))?;
        Ok(Prefetch { rx, chunk: Vec::new(), pos: 0, done: false, failed: None })
    }
}

impl Read for Prefetch {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            if let Some((kind, message)) = &self.failed {
                return Err(std::io::Error::new(*kind, message.clone()));
            }
            if self.done {
                return Ok(0);
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
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An object being read for a plugin.
pub struct ObjectReader {
    pub(super) reader: Box<dyn Read + Send>,
}

impl ObjectReader {
    /// Read `raw` (the stored bytes), decoded.
    pub fn start(
        raw: Box<dyn Read + Send + Sync>,
        encoding: &wit::Encoding,
        keys: &KeyRing,
    ) -> Result<ObjectReader, PluginError> {
        let reader: Box<dyn Read + Send> = match encoding {
            wit::Encoding::None => raw,
            wit::Encoding::Gzip => Box::new(Prefetch::start(Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 20, raw),
            )))?),
            wit::Encoding::Openpgp(k) => {
                let key = keys.open_key(k)?;
                let opened = orchestrator_openpgp::open(std::io::BufReader::with_capacity(1 << 20, raw), &key)
                    .map_err(|e| keys.describe_open_error(e))?;
                Box::new(Prefetch::start(Box::new(opened))?)
            }
        };
        Ok(ObjectReader { reader })
    }

    /// Up to `max` decoded bytes; empty at the end.
    pub fn read(&mut self, max: u32) -> Result<Vec<u8>, PluginError> {
        crate::capabilities::fill(&mut self.reader, max).map_err(|e| {
            // A damaged or wrongly keyed message shows up while reading.
            if e.kind() == std::io::ErrorKind::InvalidData {
                PluginError::Corrupt(format!("reading an object: {e}"))
            } else {
                PluginError::Io(format!("reading an object: {e}"))
            }
        })
    }
}
