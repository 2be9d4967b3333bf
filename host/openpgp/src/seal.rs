use std::{
    fmt,
    io::{self, Read, Write},
    sync::mpsc::{self, Receiver, SyncSender},
    thread::{self, JoinHandle},
};

use pgp::{
    composed::MessageBuilder,
    crypto::{hash::HashAlgorithm, sym::SymmetricKeyAlgorithm},
    types::{CompressionAlgorithm, Password, StringToKey},
};
use zeroize::Zeroizing;

use crate::{
    error::{Error, describe},
    keys::{Component, PublicKey, SealKey},
};

/// Size of the plaintext chunks handed to the worker thread.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the writer and the worker; with [`CHUNK`] this bounds the queue
/// to 256 KiB.
const QUEUE_DEPTH: usize = 4;
/// Coded S2K count 255 = 65,011,712 bytes hashed: what GnuPG 2.2 uses (spec §5.1). A sealed
/// archive lives for years and its passphrase is the weak point, so take GnuPG's cost
/// (about 0.1 s per message) rather than rPGP's default (coded 224, 16 MiB).
const S2K_COUNT: u8 = 255;
/// Partial body length of the SEIPD, compressed and literal packets (rPGP's default).
const PARTIAL_CHUNK: u32 = pgp::composed::DEFAULT_PARTIAL_CHUNK_SIZE;

enum Chunk {
    Data(Vec<u8>),
    End,
}

/// A [`Write`] that seals what is written into `out` as one OpenPGP message.
///
/// rPGP's `MessageBuilder` pulls its plaintext from a `Read`, so the message is built on a
/// worker thread that reads the chunks written here from a bounded channel; memory stays
/// bounded (a few MiB) whatever the message size, and `write` blocks while the worker is
/// behind.
///
/// - [`Sealer::finish`] must be called: it writes the last packets (and the MDC) and returns
///   `out`. Without it the message is incomplete.
/// - An error of the worker (e.g. `out` failing) is reported by the next `write`, `flush` or
///   `finish`, as an `io::Error` from which [`Error::from_io`] recovers the [`Error`].
/// - Dropping a `Sealer` without `finish` aborts the worker: it stops without writing the
///   final packets, so `out` holds a truncated message that no OpenPGP implementation
///   accepts. The drop waits for the worker to stop (which it does as soon as a pending write
///   to `out` returns); it neither hangs on the channel nor panics.
pub struct Sealer<W: Write + Send + 'static> {
    tx: Option<SyncSender<Chunk>>,
    pending: Vec<u8>,
    worker: Option<JoinHandle<Result<W, Error>>>,
    failed: Option<Error>,
}

impl<W: Write + Send + 'static> Sealer<W> {
    /// Starts a message sealed with `key`, written to `out`.
    ///
    /// Key problems (no recipients, empty passphrase, a key rPGP cannot encrypt to) are
    /// reported here, before anything is written to `out`.
    pub fn new(out: W, key: &SealKey) -> Result<Self, Error> {
        let key = WorkerKey::from(key)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let worker =
            thread::Builder::new().name("openpgp-sealer".into()).spawn(move || seal_worker(rx, ready_tx, key, out))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {
                Ok(Sealer { tx: Some(tx), pending: Vec::with_capacity(CHUNK), worker: Some(worker), failed: None })
            }
            // The worker returns the same error after reporting it; join so no thread is left.
            Ok(Err(err)) => {
                let _ = worker.join();
                Err(err)
            }
            Err(_) => Err(join_error(worker)),
        }
    }

    /// Writes the last packets and the MDC, waits for the worker and returns `out`
    /// (flushed).
    pub fn finish(mut self) -> Result<W, Error> {
        if let Some(err) = &self.failed {
            return Err(err.duplicate());
        }
        self.send_pending()?;
        let tx = self.tx.take().expect("present until finish or drop");
        // If the worker already stopped, the error comes from join below.
        let _ = tx.send(Chunk::End);
        drop(tx);
        let worker = self.worker.take().expect("present until finish or drop");
        match worker.join() {
            Ok(result) => result,
            Err(_) => Err(worker_panicked()),
        }
    }

    fn send_pending(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        let tx = self.tx.as_ref().expect("present until finish or drop");
        if tx.send(Chunk::Data(chunk)).is_ok() {
            return Ok(());
        }
        // The worker dropped its receiver, so it has stopped: its result says why.
        self.tx = None;
        let err = match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(err))) => err,
            Some(Ok(Ok(_))) => Error::Io(io::Error::other("the OpenPGP sealer stopped before the end of the message")),
            Some(Err(_)) | None => worker_panicked(),
        };
        self.failed = Some(err.duplicate());
        Err(err)
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some(err) => Err(err.duplicate().into_io()),
            None => Ok(()),
        }
    }
}

impl<W: Write + Send + 'static> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            self.send_pending().map_err(Error::into_io)?;
        }
        Ok(n)
    }

    /// Hands buffered plaintext to the worker. It does not force ciphertext into `out`:
    /// packets are emitted in whole partial-length chunks, and only `finish` ends the message.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.send_pending().map_err(Error::into_io)
    }
}

impl<W: Write + Send + 'static> Drop for Sealer<W> {
    fn drop(&mut self) {
        // Closing the channel without `End` makes the worker's reader fail, which aborts the
        // message instead of completing a truncated one.
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl<W: Write + Send + 'static> fmt::Debug for Sealer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("pending", &self.pending.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// What the worker needs of a [`SealKey`]; owned, because the worker outlives the borrow.
enum WorkerKey {
    Passphrase(Zeroizing<String>),
    Recipients(Vec<PublicKey>),
}

impl WorkerKey {
    fn from(key: &SealKey) -> Result<Self, Error> {
        match key {
            SealKey::Passphrase(p) if p.is_empty() => {
                Err(Error::Key("the passphrase is empty; refusing to seal with it".into()))
            }
            SealKey::Passphrase(p) => Ok(WorkerKey::Passphrase(Zeroizing::new(p.clone()))),
            SealKey::Recipients(keys) if keys.is_empty() => {
                Err(Error::Key("no recipients: give at least one public key to seal to".into()))
            }
            SealKey::Recipients(keys) => Ok(WorkerKey::Recipients(keys.clone())),
        }
    }
}

fn seal_worker<W: Write>(
    rx: Receiver<Chunk>,
    ready: SyncSender<Result<(), Error>>,
    key: WorkerKey,
    mut out: W,
) -> Result<W, Error> {
    let mut rng = rand::thread_rng();
    let source = ChannelReader { rx, chunk: Vec::new(), pos: 0, ended: false };
    let mut builder = MessageBuilder::from_reader("", source).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder.compression(CompressionAlgorithm::ZIP);
    let setup = (|| -> Result<(), Error> {
        builder.partial_chunk_size(PARTIAL_CHUNK).map_err(|e| Error::Io(io::Error::other(describe(&e))))?;
        match &key {
            WorkerKey::Passphrase(p) => {
                let s2k = StringToKey::new_iterated(&mut rng, HashAlgorithm::Sha256, S2K_COUNT);
                builder
                    .encrypt_with_password(s2k, &Password::from(p.as_str()))
                    .map_err(|e| Error::Key(format!("cannot seal with the passphrase: {}", describe(&e))))?;
            }
            WorkerKey::Recipients(keys) => {
                for key in keys {
                    let res = match key.encryption {
                        Component::Primary => builder.encrypt_to_key(&mut rng, &key.cert.primary_key),
                        Component::Subkey(i) => builder.encrypt_to_key(&mut rng, &key.cert.public_subkeys[i]),
                    };
                    res.map_err(|e| {
                        Error::Key(format!("cannot encrypt to key {}: {}", key.encryption_fingerprint(), describe(&e)))
                    })?;
                }
            }
        }
        Ok(())
    })();
    if let Err(err) = setup {
        let _ = ready.send(Err(err.duplicate()));
        return Err(err);
    }
    drop(key);
    // The caller may have gone away already; then the channel reader fails right away.
    let _ = ready.send(Ok(()));
    builder.to_writer(&mut rng, &mut out).map_err(|e| classify_seal(&e))?;
    out.flush()?;
    Ok(out)
}

fn classify_seal(err: &(dyn std::error::Error + 'static)) -> Error {
    for e in crate::error::chain(err) {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && !io.get_ref().is_some_and(|inner| inner.is::<pgp::errors::Error>())
        {
            return Error::Io(io::Error::new(io.kind(), describe(err)));
        }
    }
    Error::Io(io::Error::other(describe(err)))
}

fn worker_panicked() -> Error {
    Error::Io(io::Error::other("the OpenPGP sealer thread panicked"))
}

fn join_error<W>(worker: JoinHandle<Result<W, Error>>) -> Error {
    match worker.join() {
        Ok(Err(err)) => err,
        Ok(Ok(_)) => Error::Io(io::Error::other("the OpenPGP sealer stopped unexpectedly")),
        Err(_) => worker_panicked(),
    }
}

/// The worker's view of the channel: plaintext until `End`; a closed channel without `End`
/// means the `Sealer` was dropped, and must abort the message, not end it.
struct ChannelReader {
    rx: Receiver<Chunk>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.pos);
                buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(data)) => {
                    self.chunk = data;
                    self.pos = 0;
                }
                Ok(Chunk::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::other("the Sealer was dropped before finish(); the message is incomplete"));
                }
            }
        }
    }
}
