use std::{
    fmt,
    io::{self, BufRead, BufReader, Read},
    panic::{AssertUnwindSafe, catch_unwind},
};

use pgp::{
    composed::{DecryptionOptions, Edata, Esk, Message, PlainSessionKey, TheRing, decrypt_session_key_with_password},
    crypto::sym::SymmetricKeyAlgorithm,
    packet::{
        ProtectedDataConfig, PublicKeyEncryptedSessionKey, SymEncryptedProtectedDataConfig, SymKeyEncryptedSessionKey,
    },
    types::{DecryptionKey, EskType, KeyDetails, Password, PkeskVersion, Seipdv1ReadMode},
};

use crate::{
    error::{Error, InputError, classify_read, describe},
    keys::{OpenKey, Passphrase, SecretKey},
};

/// Plaintext bytes [`Opened`] keeps back until the message's integrity is verified.
///
/// rPGP itself keeps back its last ciphertext chunk until the MDC matches, but that is
/// before decompression and literal-packet framing; holding back the tail of the plaintext
/// here makes the guarantee independent of how rPGP buffers.
pub const HOLDBACK: usize = 8 * 1024;
/// Plaintext buffer of [`Opened`]; must exceed [`HOLDBACK`] by far, because the held-back
/// tail is moved to the front on every refill.
const BUF: usize = 1024 * 1024;
/// Read buffer over the caller's input.
const INPUT_BUF: usize = 64 * 1024;

/// Opens the OpenPGP message read from `input` with `key` and returns a reader of its
/// plaintext, decompressing ZIP, ZLIB, BZip2 or uncompressed data.
///
/// The session key is found here, so a wrong passphrase or key is reported by `open` as
/// [`Error::WrongKey`]; so is damage inside the session-key packets. Damage anywhere else is
/// reported by [`Opened`]'s `read` (see there).
///
/// Accepted: SKESK v4 (with or without an encrypted session key; S2K simple, salted or
/// iterated+salted, any hash rPGP knows) and PKESK v3 (RSA, ECDH including Curve25519),
/// followed by SEIPD v1 with MDC, read in rPGP's streaming mode, so memory stays bounded
/// whatever the size. Signed messages are opened without checking the signature. Legacy SED
/// packets without integrity protection are refused as [`Error::Unsupported`].
pub fn open<R: Read + Send + 'static>(input: R, key: &OpenKey) -> Result<Opened, Error> {
    let source = BufReader::with_capacity(INPUT_BUF, Input(input));
    let (msg, _armor_headers) = Message::from_reader(source).map_err(|e| match classify_read(&e) {
        Error::Corrupt(m) => Error::Corrupt(format!("not a readable OpenPGP message: {m}")),
        other => other,
    })?;
    let Message::Encrypted { esk, mut edata, is_nested } = msg else {
        return Err(Error::Unsupported(
            "the message is not encrypted (expected what `gpg --encrypt` or `gpg --symmetric` writes)".into(),
        ));
    };
    if let Edata::SymEncryptedData { .. } = edata {
        return Err(Error::Unsupported(
            "the message uses the legacy SED packet, which has no integrity protection; \
             decrypt it with `gpg --decrypt --ignore-mdc-error` and re-encrypt it"
                .into(),
        ));
    }

    let session_key = match key {
        OpenKey::Passphrase(passphrase) => from_passphrase(&esk, &mut edata, passphrase)?,
        OpenKey::SecretKey { key, passphrase } => from_secret_key(&esk, &mut edata, key, passphrase.as_deref())?,
    };

    // SEIPD v1 with AES (what GnuPG and we write): decrypted on a thread of its own, while
    // rPGP parses and inflates the plaintext packets on the reader's thread.
    let ours = match (&edata, &session_key) {
        (Edata::SymEncryptedProtectedData { reader }, PlainSessionKey::V3_4 { sym_alg, key }) => {
            matches!(reader.config(), ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V1))
                && crate::decrypt::handles(*sym_alg, key.len())
        }
        _ => false,
    };
    if ours {
        let (Edata::SymEncryptedProtectedData { reader }, PlainSessionKey::V3_4 { sym_alg, key }) =
            (edata, &session_key)
        else {
            unreachable!("checked above")
        };
        let plaintext = crate::decrypt::start(reader.into_inner(), |body| body.into_inner(), *sym_alg, key.as_ref())?;
        let (msg, _) = match crate::compressed::inflated(plaintext).map_err(|e| classify_read(&e))? {
            Ok(inflated) => Message::from_reader(inflated),
            Err(plaintext) => Message::from_reader(plaintext),
        }
        .map_err(|e| classify_read(&e))?;
        return Opened::new(msg);
    }

    let ring = TheRing {
        session_keys: vec![session_key],
        // Streaming: the default (CheckFirst) reads the whole SEIPD into memory first.
        // GnuPG AEAD (packet 20, GnuPG 2.3+ when enabled) is authenticated per chunk.
        decrypt_options: DecryptionOptions::new().set_seipdv1_read_mode(Seipdv1ReadMode::Streaming).enable_gnupg_aead(),
        ..Default::default()
    };
    let (msg, _) =
        Message::Encrypted { esk, edata, is_nested }.decrypt_the_ring(ring, true).map_err(|e| classify_read(&e))?;
    Opened::new(msg)
}

/// The plaintext of an opened message (see [`open`]).
///
/// Integrity: end of file (`Ok(0)`) is returned only after rPGP has checked the MDC and
/// found no trailing data, and the last [`HOLDBACK`] bytes are released only then. A
/// damaged, modified or truncated message makes `read` fail instead, with an `io::Error`
/// of kind `InvalidData` whose [`Error::from_io`] is [`Error::Corrupt`] (failures of the
/// input itself keep their kind and become [`Error::Io`]). After an error every later `read`
/// fails the same way. Bytes read before the error are unauthenticated: discard them.
pub struct Opened {
    msg: Option<Message<'static>>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    failed: Option<Error>,
}

impl Opened {
    /// The plaintext of `msg`, decompressed.
    fn new(msg: Message<'static>) -> Result<Opened, Error> {
        let msg = if msg.is_compressed() { msg.decompress().map_err(|e| classify_read(&e))? } else { msg };
        Ok(Opened { msg: Some(msg), buf: vec![0; BUF].into_boxed_slice(), start: 0, end: 0, eof: false, failed: None })
    }

    fn fill(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let Some(msg) = self.msg.as_mut() else {
            self.eof = true;
            return;
        };
        let dst = &mut self.buf[self.end..];
        // rPGP has `panic!`s in states it considers unreachable; a hostile message must not
        // take the host down, and after a panic the message is never touched again.
        match catch_unwind(AssertUnwindSafe(|| msg.read(dst))) {
            Ok(Ok(0)) => {
                self.eof = true;
                self.msg = None;
            }
            Ok(Ok(n)) => self.end += n,
            Ok(Err(e)) => {
                self.failed = Some(classify_read(&e));
                self.msg = None;
            }
            Err(_) => {
                self.failed = Some(Error::Corrupt("the OpenPGP parser failed on this message (rPGP panicked)".into()));
                self.msg = None;
            }
        }
    }
}

impl Read for Opened {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        read_buffered(self, out)
    }
}

/// [`Read::read`] for a reader whose [`BufRead`] side does the work: copies what `fill_buf`
/// has ready into `out`.
pub(crate) fn read_buffered<R: BufRead + ?Sized>(reader: &mut R, out: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(out.len());
    out[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

/// Appends what `reader` gives to `out` until `out` holds `limit` bytes or the input ends,
/// straight from the reader's buffer: `read_to_end` would zero `out`'s spare room first for
/// any reader but a file. Interrupted reads are retried.
pub fn append_from<R: BufRead + ?Sized>(reader: &mut R, out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
    while out.len() < limit {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let n = available.len().min(limit - out.len());
        out.extend_from_slice(&available[..n]);
        reader.consume(n);
    }
    Ok(())
}

/// The releasable plaintext, without a copy: a caller that appends it to its own buffer
/// saves the zeroing `read_to_end` does for readers it cannot see into.
impl BufRead for Opened {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if let Some(err) = &self.failed {
                return Err(err.duplicate().into_io());
            }
            let avail = self.end - self.start;
            let releasable = if self.eof { avail } else { avail.saturating_sub(HOLDBACK) };
            if releasable > 0 || self.eof {
                return Ok(&self.buf[self.start..self.start + releasable]);
            }
            self.fill();
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("buffered", &(self.end - self.start))
            .field("eof", &self.eof)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The caller's input. Its errors are tagged so that they stay [`Error::Io`] after passing
/// through rPGP, and `Interrupted` is retried here because rPGP's readers do not all retry.
struct Input<R>(R);

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::new(e.kind(), InputError(e))),
                Ok(n) => return Ok(n),
            }
        }
    }
}

impl<R> fmt::Debug for Input<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Input")
    }
}

/// The session key an SKESK holds for `passphrase`: what rPGP's
/// `decrypt_session_key_with_password` does for v4 packets, with the S2K derivation cached in
/// the [`Passphrase`]; v6 packets are left to rPGP.
fn skesk_session_key(
    skesk: &SymKeyEncryptedSessionKey,
    passphrase: &Passphrase,
) -> pgp::errors::Result<PlainSessionKey> {
    match (skesk, skesk.sym_algorithm(), skesk.s2k(), skesk.encrypted_key()) {
        (SymKeyEncryptedSessionKey::V4 { .. }, Some(alg), Some(s2k), Some(encrypted))
            if alg != SymmetricKeyAlgorithm::Plaintext =>
        {
            let key = passphrase.derive(s2k, alg.key_size())?;
            if encrypted.is_empty() {
                // No encrypted session key: the derived key is the session key.
                Ok(PlainSessionKey::V3_4 { key, sym_alg: alg })
            } else {
                skesk.decrypt(&key)
            }
        }
        _ => decrypt_session_key_with_password(skesk, &Password::from(passphrase.expose())),
    }
}

fn from_passphrase(esk: &[Esk], edata: &mut Edata<'_>, passphrase: &Passphrase) -> Result<PlainSessionKey, Error> {
    let skesks: Vec<&SymKeyEncryptedSessionKey> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::SymKeyEncryptedSessionKey(k) => Some(k),
            Esk::PublicKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    if skesks.is_empty() {
        return Err(Error::WrongKey(format!(
            "the message is encrypted to public key(s) {}, not with a passphrase: open it with the secret key",
            recipients(esk)
        )));
    }
    let mut unsupported = None;
    for skesk in skesks {
        if !skesk.is_supported() {
            unsupported = Some(format!("passphrase packet (SKESK) version {:?}", skesk.version()));
            continue;
        }
        match skesk_session_key(skesk, passphrase) {
            // A wrong passphrase "decrypts" a GnuPG SKESK (which has no encrypted session
            // key) to a wrong session key; only the quick check tells.
            Ok(key) => {
                if quick_check(edata, &key)? != Some(false) {
                    return Ok(key);
                }
            }
            Err(pgp::errors::Error::Unsupported { message, .. })
            | Err(pgp::errors::Error::Unimplemented { message, .. }) => {
                unsupported = Some(message);
            }
            Err(_) => {}
        }
    }
    if let Some(what) = unsupported {
        return Err(Error::Unsupported(format!(
            "the passphrase did not open the message, and it also uses {what}, which cannot be read"
        )));
    }
    Err(Error::WrongKey("the passphrase does not open this message (or its passphrase packet is damaged)".into()))
}

fn from_secret_key(
    esk: &[Esk],
    edata: &mut Edata<'_>,
    key: &SecretKey,
    passphrase: Option<&str>,
) -> Result<PlainSessionKey, Error> {
    let pkesks: Vec<&PublicKeyEncryptedSessionKey> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(k) => Some(k),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    if pkesks.is_empty() {
        return Err(Error::WrongKey(
            "the message is encrypted with a passphrase, not to a public key: open it with the passphrase".into(),
        ));
    }
    let password = passphrase.map(Password::from);
    // The most telling failure is reported if no component opens the message.
    let mut failure: Option<(u8, String)> = None;
    let mut note = |rank: u8, msg: String| {
        if failure.as_ref().is_none_or(|(r, _)| rank > *r) {
            failure = Some((rank, msg));
        }
    };
    let sk = &key.key;
    for pkesk in pkesks {
        let typ = match pkesk.version() {
            PkeskVersion::V3 => EskType::V3_4,
            PkeskVersion::V6 => EskType::V6,
            PkeskVersion::Other(v) => {
                note(1, format!("unsupported PKESK version {v}"));
                continue;
            }
        };
        let Ok(values) = pkesk.values() else {
            continue;
        };
        let mut attempts = Vec::new();
        if pkesk.match_identity(&sk.primary_key) {
            attempts.push(attempt(
                &sk.primary_key,
                sk.primary_key.secret_params().is_encrypted(),
                values,
                typ,
                password.as_ref(),
            ));
        }
        for sub in &sk.secret_subkeys {
            if pkesk.match_identity(&sub.key) {
                attempts.push(attempt(
                    &sub.key,
                    sub.key.secret_params().is_encrypted(),
                    values,
                    typ,
                    password.as_ref(),
                ));
            }
        }
        for a in attempts {
            match a {
                Attempt::Opened(session_key) => match quick_check(edata, &session_key)? {
                    Some(false) => note(
                        2,
                        "the secret key decrypted a session key that does not fit the data \
                         (the message is damaged at its start)"
                            .into(),
                    ),
                    _ => return Ok(session_key),
                },
                Attempt::Failed(fpr, why) => {
                    note(2, format!("secret key {fpr} could not decrypt the session key: {why}"))
                }
                Attempt::NoPassphrase(fpr) => {
                    note(3, format!("secret key {fpr} is protected by a passphrase, but none was given"))
                }
                Attempt::BadPassphrase(fpr, why) => {
                    note(3, format!("the passphrase of secret key {fpr} is wrong ({why})"))
                }
            }
        }
    }
    Err(Error::WrongKey(failure.map(|(_, m)| m).unwrap_or_else(|| {
        format!(
            "the message is encrypted to key(s) {}, not to secret key {}",
            recipients(esk),
            key.fingerprints().join(", ")
        )
    })))
}

enum Attempt {
    Opened(PlainSessionKey),
    Failed(String, String),
    NoPassphrase(String),
    BadPassphrase(String, String),
}

fn attempt<K: DecryptionKey + KeyDetails>(
    component: &K,
    locked: bool,
    values: &pgp::types::PkeskBytes,
    typ: EskType,
    password: Option<&Password>,
) -> Attempt {
    let fpr = format!("{:X}", component.fingerprint());
    let empty = Password::empty();
    let password = match (locked, password) {
        (true, None) => return Attempt::NoPassphrase(fpr),
        (true, Some(p)) => p,
        (false, _) => &empty,
    };
    match component.decrypt(password, values, typ) {
        Ok(Ok(session_key)) => Attempt::Opened(session_key),
        Ok(Err(e)) => Attempt::Failed(fpr, describe(&e)),
        Err(e) => Attempt::BadPassphrase(fpr, describe(&e)),
    }
}

/// OpenPGP CFB's quick check (RFC 4880 §5.13): the last two bytes of the random prefix
/// are repeated, so a wrong session key is detected before any data is decrypted, as GnuPG
/// does ("bad key"). `None` when it cannot be applied (not SEIPD v1, or the first chunk
/// is not buffered yet); then the MDC still decides.
fn quick_check(edata: &mut Edata<'_>, key: &PlainSessionKey) -> Result<Option<bool>, Error> {
    let Edata::SymEncryptedProtectedData { reader } = edata else {
        return Ok(None);
    };
    if !matches!(reader.config(), ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V1)) {
        return Ok(None);
    }
    let PlainSessionKey::V3_4 { sym_alg, key } = key else {
        return Ok(None);
    };
    let bs = sym_alg.block_size();
    if bs < 2 || key.len() != sym_alg.key_size() {
        return Ok(Some(false));
    }
    // Peeks: the SEIPD reader has not started decrypting, so this consumes nothing.
    let buf = reader.get_mut().fill_buf().map_err(|e| classify_read(&e))?;
    if buf.len() < bs + 2 {
        return Ok(None);
    }
    let mut prefix = buf[..bs + 2].to_vec();
    if sym_alg.decrypt_with_iv_regular(key.as_ref(), &vec![0; bs], &mut prefix).is_err() {
        return Ok(Some(false));
    }
    Ok(Some(prefix[bs - 2..bs] == prefix[bs..bs + 2]))
}

fn recipients(esk: &[Esk]) -> String {
    let ids: Vec<String> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(k) => Some(match k.id() {
                Ok(id) if id.as_ref().iter().all(|b| *b == 0) => "(anonymous)".to_owned(),
                Ok(id) => id.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
                Err(_) => match k.fingerprint() {
                    Ok(Some(fp)) => format!("{fp:X}"),
                    _ => "(anonymous)".to_owned(),
                },
            }),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    if ids.is_empty() { "(none)".into() } else { ids.join(", ") }
}
