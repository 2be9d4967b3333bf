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

/// Plaintext compressed per gzip member.
const GZIP_BLOCK: usize = 8 << 20;

/// gzip that uses every core: the stream is cut into blocks that are
/// compressed in parallel, each into its own gzip member, written in order.
/// A multi-member file is one gzip stream to every reader (gzip(1),
/// Python's `gzip` module that duplicity uses, flate2's `MultiGzDecoder`);
/// the size lost to restarting the dictionary every 8 MiB is negligible.
struct ParallelGzip<W: Write> {
    out: W,
    block: Vec<u8>,
    level: flate2::Compression,
    in_flight: std::collections::VecDeque<JoinHandle<std::io::Result<Vec<u8>>>>,
    parallelism: usize,
}

impl<W: Write> ParallelGzip<W> {
    fn new(out: W, level: u32) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParallelGzip {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            level: flate2::Compression::new(level),
            in_flight: Default::default(),
            parallelism,
        }
    }

    fn write_oldest(&mut self) -> std::io::Result<()> {
        if let Some(job) = self.in_flight.pop_front() {
            let member = job.join().map_err(|_| std::io::Error::other("a compression thread panicked"))??;
            self.out.write_all(&member)?;
        }
        Ok(())
    }

    fn dispatch(&mut self) -> std::io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let level = self.level;
        while self.in_flight.len() >= self.parallelism {
            self.write_oldest()?;
        }
        self.in_flight.push_back(std::thread::spawn(move || {
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(block.len() / 2 + 64), level);
            gz.write_all(&block)?;
            gz.finish()
        }));
        Ok(())
    }

    fn write_all(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let take = (GZIP_BLOCK - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.block.len() == GZIP_BLOCK {
                self.dispatch()?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        // An empty object is still one (empty) gzip member, as gzip writes it.
        if !self.block.is_empty() || self.in_flight.is_empty() {
            self.dispatch()?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }
}

/// The encoder between the plugin's plaintext and the stored bytes.
enum Encoder {
    Plain(Hashing),
    Gzip(Box<ParallelGzip<Hashing>>),
    Openpgp(Box<orchestrator_openpgp::Sealer<Hashing>>),
}

impl Encoder {
    fn new(stored: Hashing, encoding: &wit::Encoding, keys: &KeyRing) -> Result<Encoder, PluginError> {
        Ok(match encoding {
            wit::Encoding::None => Encoder::Plain(stored),
            // Level 6 is what duplicity (Python's gzip module) writes.
            wit::Encoding::Gzip => Encoder::Gzip(Box::new(ParallelGzip::new(stored, 6))),
            wit::Encoding::Openpgp(k) => {
                let key = keys.seal_key(k)?;
                let sealer = orchestrator_openpgp::Sealer::new(stored, &key)
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
            wit::Encoding::Gzip => {
                Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, raw)))
            }
            wit::Encoding::Openpgp(k) => {
                let key = keys.open_key(k)?;
                let opened = orchestrator_openpgp::open(std::io::BufReader::with_capacity(1 << 20, raw), &key)
                    .map_err(|e| keys.describe_open_error(e))?;
                Box::new(opened)
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
