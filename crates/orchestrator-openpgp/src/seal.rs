use cfb_mode::cipher::KeyIvInit;
use rand::RngCore;
use sha1::{Digest, Sha1};
use std::{
    fmt,
    io::{self, Write},
    sync::{
        Arc, OnceLock,
        mpsc::{self, Receiver, SyncSender},
    },
    thread::{self, JoinHandle},
};

use orchestrator_deflate::ParallelDeflate;
use pgp::{
    composed::{Esk, RawSessionKey},
    crypto::{hash::HashAlgorithm, sym::SymmetricKeyAlgorithm},
    packet::{PacketHeader, PublicKeyEncryptedSessionKey, SymKeyEncryptedSessionKey},
    ser::Serialize,
    types::{StringToKey, Tag},
};

use crate::{
    error::{Error, describe},
    keys::{Component, PublicKey, SealKey},
};

/// Plaintext bytes per chunk handed to the encryption thread: a power of two, so a chunk
/// is one partial body of the SEIPD packet and goes out without being copied.
const CHUNK: usize = 256 * 1024;
/// Room in front of each chunk for what precedes it in the SEIPD packet: its tag and partial
/// length, and before the first chunk the version byte and the encrypted random prefix.
const HEADROOM: usize = 24;
/// What the first chunk's piece of the SEIPD body carries before its plaintext: the version
/// byte and the 18-byte prefix.
const FIRST_BODY: usize = 1 + 18;
/// Chunks in flight to the encryption thread: 4 MiB, so the serial AES thread always has
/// work queued when it gets a core.
const QUEUE_DEPTH: usize = 16;
/// Coded S2K count 255 = 65,011,712 bytes hashed: what GnuPG 2.2 uses (spec §5.1). A sealed
/// archive lives for years and its passphrase is the weak point, so take GnuPG's cost. It is
/// paid once per [`SealingKey`], not per message.
const S2K_COUNT: u8 = 255;
/// Partial body length of every packet written (a power of two, at least 512).
const PARTIAL: usize = 64 * 1024;
/// OpenPGP compression algorithm 1: raw deflate, what GnuPG writes by default.
const ZIP: u8 = 1;
const CIPHER: SymmetricKeyAlgorithm = SymmetricKeyAlgorithm::AES256;

/// A [`SealKey`] made ready for many messages.
///
/// For a passphrase, the expensive S2K derivation (40 ms here) runs once, on a thread of its
/// own that starts here, so the caller goes on while it runs; the first message's encryption
/// thread waits for it, not the writer. Each message still gets its own random session key,
/// encrypted with the derived key in its SKESK (as `gpg --symmetric` does when it is given
/// `--s2k-count` and a session key). All messages sealed with one `SealingKey` share the S2K
/// salt, which costs nothing: they share the passphrase anyway.
#[derive(Clone)]
pub struct SealingKey {
    kind: Prepared,
    level: u32,
}

#[derive(Clone)]
enum Prepared {
    Passphrase { s2k: StringToKey, kek: Arc<Kek> },
    Recipients(Vec<PublicKey>),
}

/// The key-encryption key a passphrase derives to, derived once by whichever thread needs it
/// first (a background thread started with the [`SealingKey`], or a sealer's).
struct Kek {
    passphrase: String,
    derived: OnceLock<Result<RawSessionKey, String>>,
}

impl Kek {
    /// Starts deriving in the background; [`Kek::get`] waits for it.
    fn start(passphrase: &str, s2k: &StringToKey) -> Arc<Kek> {
        let kek = Arc::new(Kek { passphrase: passphrase.to_string(), derived: OnceLock::new() });
        let (background, s2k) = (kek.clone(), s2k.clone());
        // Without a thread, the first sealer derives it.
        let _ = thread::Builder::new().name("openpgp-s2k".into()).spawn(move || {
            background.get(&s2k).ok();
        });
        kek
    }

    fn get(&self, s2k: &StringToKey) -> Result<&RawSessionKey, Error> {
        self.derived
            .get_or_init(|| s2k.derive_key(self.passphrase.as_bytes(), CIPHER.key_size()).map_err(|e| describe(&e)))
            .as_ref()
            .map_err(|e| Error::Key(format!("cannot derive a key from the passphrase: {e}")))
    }
}

impl SealingKey {
    /// Prepares `key`, with GnuPG's compression level 6.
    ///
    /// Key problems (no recipients, an empty passphrase) are reported here.
    pub fn new(key: &SealKey) -> Result<SealingKey, Error> {
        Self::with_salt(key, None)
    }

    /// [`SealingKey::new`], with the S2K salt given instead of drawn (for a passphrase).
    ///
    /// Messages that share a salt open with one derivation: a store that seals a chain
    /// run after run with the salt of its first run costs a restore one derivation for the
    /// whole chain, not one per run. The salt is public (every message carries it); its
    /// job, keeping precomputed tables useless, is done as long as it is random once.
    pub fn with_salt(key: &SealKey, salt: Option<[u8; 8]>) -> Result<SealingKey, Error> {
        let kind = match key {
            SealKey::Passphrase(p) if p.is_empty() => {
                return Err(Error::Key("the passphrase is empty; refusing to seal with it".into()));
            }
            SealKey::Passphrase(p) => {
                let s2k = match salt {
                    Some(salt) => {
                        StringToKey::IteratedAndSalted { hash_alg: HashAlgorithm::Sha256, salt, count: S2K_COUNT }
                    }
                    None => StringToKey::new_iterated(rand::thread_rng(), HashAlgorithm::Sha256, S2K_COUNT),
                };
                let kek = Kek::start(p, &s2k);
                Prepared::Passphrase { s2k, kek }
            }
            SealKey::Recipients(keys) if keys.is_empty() => {
                return Err(Error::Key("no recipients: give at least one public key to seal to".into()));
            }
            SealKey::Recipients(keys) => Prepared::Recipients(keys.clone()),
        };
        Ok(SealingKey { kind, level: 6 })
    }

    /// The S2K salt of a passphrase key (`None` for recipients' keys).
    pub fn salt(&self) -> Option<[u8; 8]> {
        match &self.kind {
            Prepared::Passphrase { s2k: StringToKey::IteratedAndSalted { salt, .. }, .. } => Some(*salt),
            _ => None,
        }
    }

    /// The deflate level of the ZIP packet: 1 is fastest, 9 smallest, 0 writes no compression
    /// packet at all (like `gpg -z 0`).
    pub fn with_compression(mut self, level: u32) -> SealingKey {
        self.level = level.min(9);
        self
    }

    /// The session-key packets of one message with `session_key`.
    fn esks(&self, session_key: &RawSessionKey) -> Result<Vec<Esk>, Error> {
        match &self.kind {
            Prepared::Passphrase { s2k, kek } => {
                let kek = kek.get(s2k)?;
                // The SKESK v4 rPGP's `encrypt_v4` writes, with the key derived once.
                let mut encrypted = Vec::with_capacity(1 + session_key.len());
                encrypted.push(u8::from(CIPHER));
                encrypted.extend_from_slice(session_key.as_ref());
                CIPHER
                    .encrypt_with_iv_regular(kek.as_ref(), &vec![0; CIPHER.block_size()], &mut encrypted)
                    .map_err(|e| Error::Key(format!("cannot encrypt the session key: {}", describe(&e))))?;
                let len = 2 + s2k.write_len() + encrypted.len();
                let packet_header = PacketHeader::new_fixed(Tag::SymKeyEncryptedSessionKey, len as u32);
                Ok(vec![Esk::SymKeyEncryptedSessionKey(SymKeyEncryptedSessionKey::V4 {
                    packet_header,
                    sym_algorithm: CIPHER,
                    s2k: s2k.clone(),
                    encrypted_key: encrypted.into(),
                })])
            }
            Prepared::Recipients(keys) => keys
                .iter()
                .map(|key| {
                    let mut rng = rand::thread_rng();
                    let res = match key.encryption {
                        Component::Primary => PublicKeyEncryptedSessionKey::from_session_key_v3(
                            &mut rng,
                            session_key,
                            CIPHER,
                            &key.cert.primary_key,
                        ),
                        Component::Subkey(i) => PublicKeyEncryptedSessionKey::from_session_key_v3(
                            &mut rng,
                            session_key,
                            CIPHER,
                            &key.cert.public_subkeys[i],
                        ),
                    };
                    res.map(Esk::PublicKeyEncryptedSessionKey).map_err(|e| {
                        Error::Key(format!("cannot encrypt to key {}: {}", key.encryption_fingerprint(), describe(&e)))
                    })
                })
                .collect(),
        }
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Prepared::Passphrase { .. } => "passphrase",
            Prepared::Recipients(_) => "recipients",
        };
        f.debug_struct("SealingKey").field("kind", &kind).field("level", &self.level).finish()
    }
}

/// A [`Write`] that can also take a whole buffer, so the sealer hands its encrypted chunks
/// on without copying them. The default copies; storage takes the buffer.
pub trait OwnedWrite: Write {
    /// Writes `buf[start..]`, taking the buffer.
    fn write_owned(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        self.write_all(&buf[start..])
    }
}

impl OwnedWrite for Vec<u8> {}

impl<T: OwnedWrite + ?Sized> OwnedWrite for &mut T {
    fn write_owned(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        (**self).write_owned(buf, start)
    }
}

/// One packet of unknown length written with partial body lengths: full chunks as they fill,
/// the rest with a definite length at [`PacketWriter::finish`].
struct PacketWriter<W: Write> {
    out: W,
    tag: Tag,
    buf: Vec<u8>,
    started: bool,
}

impl<W: Write> PacketWriter<W> {
    /// A packet whose body starts with `prefix`.
    fn new(out: W, tag: Tag, prefix: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(PARTIAL);
        buf.extend_from_slice(prefix);
        PacketWriter { out, tag, buf, started: false }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.out.write_all(&[0xc0 | u8::from(self.tag)])?;
        }
        Ok(())
    }

    fn partial(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.header()?;
        // 224 + n announces a partial body of 2^n bytes.
        self.out.write_all(&[224 + PARTIAL.trailing_zeros() as u8])?;
        self.out.write_all(chunk)
    }

    /// Writes `chunk[body..]`, a power of two of at least 512 bytes, as the next partial
    /// body without copying it: the headers go into the two bytes before `body`. Only when
    /// nothing is buffered (else the bytes would go out of order); `Err(chunk)` otherwise.
    fn partial_owned(&mut self, mut chunk: Vec<u8>, body: usize) -> Result<io::Result<()>, Vec<u8>>
    where
        W: OwnedWrite,
    {
        let n = chunk.len() - body;
        if !self.buf.is_empty() || !n.is_power_of_two() || !(512..=1 << 30).contains(&n) || body < 2 {
            return Err(chunk);
        }
        let mut start = body - 1;
        chunk[start] = 224 + n.trailing_zeros() as u8;
        if !self.started {
            self.started = true;
            start -= 1;
            chunk[start] = 0xc0 | u8::from(self.tag);
        }
        Ok(self.out.write_owned(chunk, start))
    }

    fn finish(mut self) -> io::Result<W> {
        self.header()?;
        let n = self.buf.len();
        match n {
            0..192 => self.out.write_all(&[n as u8])?,
            192..8384 => {
                let m = n - 192;
                self.out.write_all(&[(m >> 8) as u8 + 192, m as u8])?;
            }
            _ => {
                self.out.write_all(&[0xff])?;
                self.out.write_all(&(n as u32).to_be_bytes())?;
            }
        }
        self.out.write_all(&self.buf)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for PacketWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        // A chunk is sent only when more data follows it: the last one has a definite length.
        while !data.is_empty() {
            if self.buf.len() == PARTIAL {
                let chunk = std::mem::take(&mut self.buf);
                self.partial(&chunk)?;
                self.buf = chunk;
                self.buf.clear();
            }
            if self.buf.is_empty() && data.len() > PARTIAL {
                self.partial(&data[..PARTIAL])?;
                data = &data[PARTIAL..];
                continue;
            }
            let take = (PARTIAL - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Chunk {
    Data(Vec<u8>),
    /// The plaintext is complete; its modification detection code (SHA-1) follows.
    End([u8; 20]),
}

/// The MDC packet's header: tag 19, length 20 (RFC 4880 §5.14).
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];

/// The plaintext side's end of the channel to the encryption thread, batching small writes.
///
/// The MDC (SHA-1 over the random prefix, the plaintext and the MDC header) is hashed here,
/// on the writer's thread, so the encryption thread does AES alone: CFB encryption is serial,
/// and for incompressible data it is what limits how fast a message is sealed.
///
/// Chunks are cut so that each is one partial body of the SEIPD packet: [`CHUNK`] bytes of
/// body, the first less [`FIRST_BODY`] for the version and prefix that precede it. Each has
/// [`HEADROOM`] bytes in front for those headers.
struct ChunkSender {
    tx: Option<SyncSender<Chunk>>,
    buf: Vec<u8>,
    /// Plaintext bytes the current chunk holds when full.
    limit: usize,
    mdc: Sha1,
}

fn fresh_chunk(limit: usize) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(HEADROOM + limit);
    chunk.resize(HEADROOM, 0);
    chunk
}

impl ChunkSender {
    fn new(tx: SyncSender<Chunk>, mdc: Sha1) -> ChunkSender {
        let limit = CHUNK - FIRST_BODY;
        ChunkSender { tx: Some(tx), buf: fresh_chunk(limit), limit, mdc }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.len() == HEADROOM {
            return Ok(());
        }
        self.limit = CHUNK;
        let chunk = std::mem::replace(&mut self.buf, fresh_chunk(CHUNK));
        self.mdc.update(&chunk[HEADROOM..]);
        match self.tx.as_ref().map(|tx| tx.send(Chunk::Data(chunk))) {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other(STOPPED)),
        }
    }

    fn end(mut self) -> io::Result<()> {
        self.send()?;
        self.mdc.update(MDC_HEADER);
        let mdc = self.mdc.finalize().into();
        match self.tx.take().map(|tx| tx.send(Chunk::End(mdc))) {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other(STOPPED)),
        }
    }
}

const STOPPED: &str = "the OpenPGP encryption thread stopped";

impl Write for ChunkSender {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (self.limit + HEADROOM - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.limit + HEADROOM {
                self.send()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The plaintext pipeline on the writer's side: literal packet, then (unless the level is 0)
/// a ZIP packet compressed on every core.
enum Plaintext {
    Zip(PacketWriter<ParallelDeflate<PacketWriter<ChunkSender>>>),
    Plain(PacketWriter<ChunkSender>),
}

impl Plaintext {
    fn new(sender: ChunkSender, level: u32) -> io::Result<Plaintext> {
        // Binary literal data, no file name, no date: what duplicity's gpg writes for a pipe.
        const LITERAL: [u8; 6] = [b'b', 0, 0, 0, 0, 0];
        Ok(if level == 0 {
            Plaintext::Plain(PacketWriter::new(sender, Tag::LiteralData, &LITERAL))
        } else {
            let compressed = PacketWriter::new(sender, Tag::CompressedData, &[ZIP]);
            let deflate = ParallelDeflate::new(compressed, level)?;
            Plaintext::Zip(PacketWriter::new(deflate, Tag::LiteralData, &LITERAL))
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Plaintext::Zip(w) => w.write_all(data),
            Plaintext::Plain(w) => w.write_all(data),
        }
    }

    fn finish(self) -> io::Result<ChunkSender> {
        match self {
            Plaintext::Zip(w) => w.finish()?.finish()?.finish(),
            Plaintext::Plain(w) => w.finish(),
        }
    }
}

/// A [`Write`] that seals what is written into `out` as one OpenPGP message.
///
/// The message is what GnuPG 2.2 writes and duplicity reads: the session-key packets, then
/// SEIPD v1 (AES-256 with MDC) around a ZIP packet around a binary literal packet, all with
/// partial body lengths so nothing needs the total size in advance. Plaintext is framed and
/// compressed on the writer's side (deflate on every core, see `orchestrator-deflate`), and
/// encrypted on a worker thread fed through a bounded channel (rPGP's SEIPD v1 stream
/// encryptor pulls from a reader), so memory stays at a few MiB whatever the message size.
///
/// - [`Sealer::finish`] must be called: it writes the last packets (and the MDC) and returns
///   `out`. Without it the message is incomplete.
/// - An error of the worker (e.g. `out` failing) is reported by the next `write` or
///   `finish`, as an `io::Error` from which [`Error::from_io`] recovers the [`Error`].
/// - Dropping a `Sealer` without `finish` aborts the worker: it stops without writing the
///   final packets, so `out` holds a truncated message that no OpenPGP implementation
///   accepts. The drop waits for the worker to stop; it neither hangs nor panics.
pub struct Sealer<W: OwnedWrite + Send + 'static> {
    plaintext: Option<Plaintext>,
    worker: Option<JoinHandle<Result<W, Error>>>,
    failed: Option<Error>,
}

impl<W: OwnedWrite + Send + 'static> Sealer<W> {
    /// Starts a message sealed with `key` (prepared for this one message), written to `out`.
    pub fn new(out: W, key: &SealKey) -> Result<Self, Error> {
        Self::with_key(out, &SealingKey::new(key)?)
    }

    /// Starts a message sealed with a prepared key, written to `out`.
    pub fn with_key(out: W, key: &SealingKey) -> Result<Self, Error> {
        let session_key = CIPHER.new_session_key(rand::thread_rng());
        // SEIPD v1's random prefix: one block, then its last two bytes again (RFC 4880 §5.13).
        let mut prefix = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut prefix[..16]);
        prefix.copy_within(14..16, 16);
        let mut mdc = Sha1::new();
        mdc.update(prefix);
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let sealing = key.clone();
        let worker = thread::Builder::new()
            .name("openpgp-sealer".into())
            .spawn(move || seal_worker(rx, &sealing, session_key, prefix, out))?;
        let sender = ChunkSender::new(tx, mdc);
        let plaintext = Plaintext::new(sender, key.level)?;
        Ok(Sealer { plaintext: Some(plaintext), worker: Some(worker), failed: None })
    }

    /// Writes the last packets and the MDC, waits for the worker and returns `out`
    /// (flushed).
    pub fn finish(mut self) -> Result<W, Error> {
        if let Some(err) = &self.failed {
            return Err(err.duplicate());
        }
        let plaintext = self.plaintext.take().expect("present until finish");
        let ended = plaintext.finish().and_then(ChunkSender::end);
        let result = self.join();
        match (ended, result) {
            (_, Err(err)) => Err(err),
            (Err(e), Ok(_)) => Err(Error::Io(e)),
            (Ok(()), Ok(out)) => Ok(out),
        }
    }

    fn join(&mut self) -> Result<W, Error> {
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(worker_panicked()),
            None => Err(Error::Io(io::Error::other(STOPPED))),
        }
    }
}

impl<W: OwnedWrite + Send + 'static> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(err) = &self.failed {
            return Err(err.duplicate().into_io());
        }
        let plaintext = self.plaintext.as_mut().expect("present until finish");
        match plaintext.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                // The worker's own error says why; the writer side only saw the channel close.
                self.plaintext = None;
                let err = match self.join() {
                    Err(err) => err,
                    Ok(_) => Error::Io(e),
                };
                self.failed = Some(err.duplicate());
                Err(err.into_io())
            }
        }
    }

    /// Plaintext is framed in whole chunks and compressed in whole blocks; only `finish`
    /// ends the message.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: OwnedWrite + Send + 'static> Drop for Sealer<W> {
    fn drop(&mut self) {
        // Dropping the plaintext side closes the channel without `End`, which makes the
        // worker's reader fail and abort the message instead of completing a truncated one.
        self.plaintext = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl<W: OwnedWrite + Send + 'static> fmt::Debug for Sealer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("failed", &self.failed).finish_non_exhaustive()
    }
}

/// Encrypts the plaintext chunks into one SEIPD v1 packet (RFC 4880 §5.13): AES-256 in CFB
/// mode with a zero IV and no resynchronisation over the prefix, the plaintext and the MDC
/// packet, each chunk encrypted in place.
fn seal_worker<W: OwnedWrite>(
    rx: Receiver<Chunk>,
    key: &SealingKey,
    session_key: RawSessionKey,
    mut prefix: [u8; 18],
    out: W,
) -> Result<W, Error> {
    // Made here, so waiting for the passphrase's derivation holds up this thread alone.
    let esks = key.esks(&session_key)?;
    // The session-key packets go out with the first encrypted bytes, so an aborted message is
    // never just a well-formed header (which gpg would "decrypt" to nothing, successfully).
    let mut header = Vec::new();
    for esk in &esks {
        esk.to_writer(&mut header).map_err(|e| Error::Io(io::Error::other(describe(&e))))?;
    }
    let mut out = Deferred { out, header };
    let mut cfb = cfb_mode::BufEncryptor::<aes::Aes256>::new_from_slices(session_key.as_ref(), &[0; 16])
        .map_err(|e| Error::Key(format!("cannot start encrypting: {e}")))?;
    drop(session_key);
    // SEIPD version 1, then the encrypted prefix, data and MDC. Whole chunks go out as
    // partial bodies in their own buffers; anything else through the packet's buffer.
    let mut seipd = PacketWriter::new(&mut out, Tag::SymEncryptedProtectedData, &[]);
    cfb.encrypt(&mut prefix);
    let mut first = true;
    loop {
        match rx.recv() {
            Ok(Chunk::Data(mut chunk)) => {
                cfb.encrypt(&mut chunk[HEADROOM..]);
                let mut body = HEADROOM;
                if std::mem::take(&mut first) {
                    body -= FIRST_BODY;
                    chunk[body] = 1;
                    chunk[body + 1..HEADROOM].copy_from_slice(&prefix);
                }
                if let Err(chunk) = seipd.partial_owned(chunk, body) {
                    seipd.write_all(&chunk[body..])?;
                }
            }
            Ok(Chunk::End(hash)) => {
                if std::mem::take(&mut first) {
                    seipd.write_all(&[1])?;
                    seipd.write_all(&prefix)?;
                }
                let mut mdc = [0u8; 22];
                mdc[..2].copy_from_slice(&MDC_HEADER);
                mdc[2..].copy_from_slice(&hash);
                cfb.encrypt(&mut mdc);
                seipd.write_all(&mdc)?;
                break;
            }
            // The Sealer was dropped without finish: abort, never complete a truncated message.
            Err(_) => {
                return Err(Error::Io(io::Error::other(
                    "the Sealer was dropped before finish(); the message is incomplete",
                )));
            }
        }
    }
    seipd.finish()?;
    out.flush()?;
    Ok(out.out)
}

/// `out`, with `header` written before the first bytes.
struct Deferred<W: Write> {
    out: W,
    header: Vec<u8>,
}

impl<W: OwnedWrite> OwnedWrite for Deferred<W> {
    fn write_owned(&mut self, buf: Vec<u8>, start: usize) -> io::Result<()> {
        if !self.header.is_empty() {
            self.out.write_all(&std::mem::take(&mut self.header))?;
        }
        self.out.write_owned(buf, start)
    }
}

impl<W: Write> Write for Deferred<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.header.is_empty() {
            self.out.write_all(&std::mem::take(&mut self.header))?;
        }
        self.out.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn worker_panicked() -> Error {
    Error::Io(io::Error::other("the OpenPGP sealer thread panicked"))
}
