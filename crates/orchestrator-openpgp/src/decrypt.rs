//! SEIPD v1 decryption (RFC 4880 §5.13) on a thread of its own.
//!
//! Opening a volume is AES-CFB decryption and SHA-1 (the MDC) of every byte, then inflating
//! what that gives. On one thread the three are the slowest step of a restore; here the
//! first two run on a decryption thread and rPGP parses and inflates the plaintext packets
//! on the reader's thread. rPGP still parses the packet framing (partial lengths) of the
//! encrypted packet, finds the session key and does everything that is not SEIPD v1 with AES.
//!
//! Integrity is kept as rPGP keeps it: the reader sees the end of the plaintext only after
//! the MDC matched and nothing follows the encrypted packet; any damage is an error instead.

use std::{
    fmt,
    io::{self, BufRead, Read},
    sync::mpsc::{Receiver, SyncSender, sync_channel},
    thread,
};

use crate::cfb::CfbDecryptor;
use aes::cipher::KeyInit;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use sha1::{Digest, Sha1};

use crate::error::{Error, classify_read};

/// Ciphertext read per step.
const CHUNK: usize = 1 << 20;
/// Plaintext chunks in flight to the reader.
const QUEUE: usize = 4;
/// The MDC packet at the end of the plaintext: tag 19 and length 20, then SHA-1.
const MDC_LEN: usize = 22;

enum Cfb {
    Aes128(CfbDecryptor<aes::Aes128>),
    Aes192(CfbDecryptor<aes::Aes192>),
    Aes256(CfbDecryptor<aes::Aes256>),
}

impl Cfb {
    /// A decryptor for `alg` with a zero IV, or `None` for ciphers left to rPGP.
    fn new(alg: SymmetricKeyAlgorithm, key: &[u8]) -> Option<Cfb> {
        let iv = [0u8; 16];
        match alg {
            SymmetricKeyAlgorithm::AES128 => {
                aes::Aes128::new_from_slice(key).ok().map(|c| Cfb::Aes128(CfbDecryptor::new(c, iv)))
            }
            SymmetricKeyAlgorithm::AES192 => {
                aes::Aes192::new_from_slice(key).ok().map(|c| Cfb::Aes192(CfbDecryptor::new(c, iv)))
            }
            SymmetricKeyAlgorithm::AES256 => {
                aes::Aes256::new_from_slice(key).ok().map(|c| Cfb::Aes256(CfbDecryptor::new(c, iv)))
            }
            _ => None,
        }
    }

    fn decrypt(&mut self, data: &mut [u8]) {
        match self {
            Cfb::Aes128(c) => c.decrypt(data),
            Cfb::Aes192(c) => c.decrypt(data),
            Cfb::Aes256(c) => c.decrypt(data),
        }
    }
}

/// Whether [`start`] handles messages encrypted with `alg`.
pub(crate) fn handles(alg: SymmetricKeyAlgorithm, key_len: usize) -> bool {
    Cfb::new(alg, &vec![0; key_len]).is_some()
}

/// Decrypts the SEIPD v1 body `ciphertext` (after its version octet) with `key`, on a thread
/// of its own; `rest` is what follows the packet, which must be nothing. The random prefix is
/// checked by the caller's quick check. Returns the plaintext packets.
pub(crate) fn start<B, T>(
    ciphertext: B,
    rest: impl FnOnce(B) -> T + Send + 'static,
    alg: SymmetricKeyAlgorithm,
    key: &[u8],
) -> Result<Plaintext, Error>
where
    B: BufRead + Send + 'static,
    T: BufRead,
{
    let cfb = Cfb::new(alg, key).ok_or_else(|| Error::Unsupported(format!("cipher {alg:?}")))?;
    let (tx, rx) = sync_channel(QUEUE);
    thread::Builder::new().name("openpgp-decrypt".into()).spawn(move || {
        let outcome = decrypt(ciphertext, rest, cfb, alg.block_size() + 2, &tx);
        if let Err(e) = outcome {
            let _ = tx.send(Err(e));
        }
    })?;
    Ok(Plaintext { rx, chunk: Vec::new(), pos: 0, ended: false, failed: None })
}

fn decrypt<B: BufRead, T: BufRead>(
    mut ciphertext: B,
    rest: impl FnOnce(B) -> T,
    mut cfb: Cfb,
    prefix_len: usize,
    tx: &SyncSender<Result<Vec<u8>, Error>>,
) -> Result<(), Error> {
    let mut mdc = Sha1::new();
    let mut prefix = vec![0u8; prefix_len];
    ciphertext.read_exact(&mut prefix).map_err(|e| classify_read(&e))?;
    cfb.decrypt(&mut prefix);
    mdc.update(&prefix);
    // The last MDC_LEN bytes seen so far may be the MDC packet: they are released only once
    // more data follows them, at the front of the next chunk (which has room for them, so
    // no chunk is copied).
    let mut tail: Vec<u8> = Vec::with_capacity(MDC_LEN);
    loop {
        // CHUNK in all: a size the allocator keeps ready. Filled from the input's buffer,
        // so it is never zeroed first (as `read_to_end` would).
        let mut chunk = Vec::with_capacity(CHUNK);
        chunk.extend_from_slice(&tail);
        let held = chunk.len();
        crate::open::append_from(&mut ciphertext, &mut chunk, CHUNK).map_err(|e| classify_read(&e))?;
        if chunk.len() == held {
            break;
        }
        cfb.decrypt(&mut chunk[held..]);
        tail = chunk.split_off(chunk.len().saturating_sub(MDC_LEN));
        if !chunk.is_empty() {
            mdc.update(&chunk);
            if tx.send(Ok(chunk)).is_err() {
                // The reader is gone: nothing to do.
                return Ok(());
            }
        }
    }
    if tail.len() < MDC_LEN || tail[..2] != [0xD3, 0x14] {
        return Err(Error::Corrupt("the message is truncated (its integrity check is missing)".into()));
    }
    mdc.update(&tail[..2]);
    if mdc.finalize()[..] != tail[2..] {
        return Err(Error::Corrupt("integrity check (MDC) failed: the message was modified or damaged".into()));
    }
    let mut after = rest(ciphertext);
    if !after.fill_buf().map_err(|e| classify_read(&e))?.is_empty() {
        return Err(Error::Corrupt("data follows the encrypted packet".into()));
    }
    let _ = tx.send(Ok(Vec::new()));
    Ok(())
}

/// The verified plaintext packets of a message, read by rPGP's parser. The end comes only
/// after the MDC matched; a failure is reported on every later read.
pub(crate) struct Plaintext {
    rx: Receiver<Result<Vec<u8>, Error>>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
    failed: Option<Error>,
}

impl Read for Plaintext {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::open::read_buffered(self, buf)
    }
}

impl BufRead for Plaintext {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() && !self.ended {
            if let Some(e) = &self.failed {
                return Err(e.duplicate().into_io());
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = Some(e.duplicate());
                    return Err(e.into_io());
                }
                Err(_) => {
                    let e = Error::Io(io::Error::other("the OpenPGP decryption thread stopped"));
                    self.failed = Some(e.duplicate());
                    return Err(e.into_io());
                }
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext").field("ended", &self.ended).finish_non_exhaustive()
    }
}
