use std::{
    fmt,
    sync::{Arc, Mutex},
};

use pgp::{
    composed::{Deserializable, RawSessionKey, SignedPublicKey, SignedSecretKey},
    packet::{KeyFlags, Signature, SignatureType},
    types::{KeyDetails, StringToKey, Timestamp},
};

use crate::error::{Error, describe};

/// How a message is sealed.
#[derive(Clone)]
pub enum SealKey {
    /// Symmetric encryption (`gpg --symmetric`): SKESK v4, AES-256, iterated+salted SHA-256 S2K.
    Passphrase(String),
    /// Public-key encryption to every recipient (`gpg --encrypt -r …`): one PKESK v3 each.
    Recipients(Vec<PublicKey>),
}

/// How a message is opened.
#[derive(Clone)]
pub enum OpenKey {
    /// The passphrase of a symmetrically encrypted message.
    Passphrase(Passphrase),
    /// A secret key the message was encrypted to, and the passphrase protecting that key
    /// (`None` if the key is not protected).
    SecretKey {
        /// The recipient's secret key.
        key: SecretKey,
        /// The passphrase that unlocks `key`.
        passphrase: Option<String>,
    },
}

/// A passphrase that opens messages, and the keys its S2K derivations gave.
///
/// An iterated S2K as GnuPG writes it hashes 65 MB per derivation (a tenth of a second), and
/// every object sealed in one run by [`crate::Sealer`] shares one S2K salt, so remembering the
/// derived keys makes opening a whole chain cost one derivation per run that wrote it instead
/// of one per volume. Clones share what was derived.
#[derive(Clone)]
pub struct Passphrase {
    text: String,
    derived: Arc<Mutex<Vec<(StringToKey, usize, RawSessionKey)>>>,
}

/// Derivations kept per passphrase: duplicity seals every volume with a fresh salt, so its
/// chains gain nothing and must not grow the cache without bound.
const DERIVED_KEPT: usize = 16;

impl Passphrase {
    /// The passphrase's text.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The key `s2k` derives from this passphrase, `key_size` bytes long, derived once.
    pub(crate) fn derive(&self, s2k: &StringToKey, key_size: usize) -> pgp::errors::Result<RawSessionKey> {
        let lookup = |kept: &[(StringToKey, usize, RawSessionKey)]| {
            kept.iter().find(|(s, n, _)| s == s2k && *n == key_size).map(|(_, _, k)| k.clone())
        };
        if let Some(key) = lookup(&self.derived.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(key);
        }
        // Derived outside the lock: a slow derivation must not hold up other threads.
        let key = s2k.derive_key(self.text.as_bytes(), key_size)?;
        let mut kept = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        if lookup(&kept).is_none() {
            if kept.len() == DERIVED_KEPT {
                kept.remove(0);
            }
            kept.push((s2k.clone(), key_size, key.clone()));
        }
        Ok(key)
    }
}

impl From<String> for Passphrase {
    fn from(text: String) -> Passphrase {
        Passphrase { text, derived: Arc::default() }
    }
}

impl From<&str> for Passphrase {
    fn from(text: &str) -> Passphrase {
        Passphrase::from(text.to_string())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

// Passphrases must not end up in logs.
impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealKey::Passphrase(_) => f.write_str("SealKey::Passphrase(..)"),
            SealKey::Recipients(keys) => f.debug_tuple("SealKey::Recipients").field(keys).finish(),
        }
    }
}

impl fmt::Debug for OpenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenKey::Passphrase(_) => f.write_str("OpenKey::Passphrase(..)"),
            OpenKey::SecretKey { key, passphrase } => f
                .debug_struct("OpenKey::SecretKey")
                .field("key", key)
                .field("passphrase", &passphrase.as_ref().map(|_| ".."))
                .finish(),
        }
    }
}

/// Which component of a certificate messages are encrypted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Component {
    Primary,
    Subkey(usize),
}

/// A recipient's certificate, with the (sub)key that messages to it are encrypted to.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) cert: SignedPublicKey,
    pub(crate) encryption: Component,
}

impl PublicKey {
    /// Fingerprint of the primary key, upper-case hex (as `gpg --list-keys` prints it).
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.cert.fingerprint())
    }

    /// Fingerprint of the (sub)key messages are encrypted to.
    pub fn encryption_fingerprint(&self) -> String {
        match self.encryption {
            Component::Primary => self.fingerprint(),
            Component::Subkey(i) => format!("{:X}", self.cert.public_subkeys[i].fingerprint()),
        }
    }

    /// The certificate's user IDs that are valid UTF-8.
    pub fn user_ids(&self) -> Vec<String> {
        self.cert.details.users.iter().filter_map(|u| u.id.as_str().map(str::to_owned)).collect()
    }

    /// The underlying rPGP certificate.
    pub fn cert(&self) -> &SignedPublicKey {
        &self.cert
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint())
            .field("encryption_key", &self.encryption_fingerprint())
            .field("user_ids", &self.user_ids())
            .finish()
    }
}

/// A secret key (transferable secret key, as `gpg --export-secret-keys` writes it).
#[derive(Clone)]
pub struct SecretKey {
    pub(crate) key: Box<SignedSecretKey>,
}

impl SecretKey {
    /// Fingerprint of the primary key, upper-case hex.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.key.primary_key.fingerprint())
    }

    /// Fingerprints of the primary key and all subkeys, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        std::iter::once(self.fingerprint())
            .chain(self.key.secret_subkeys.iter().map(|s| format!("{:X}", s.key.fingerprint())))
            .collect()
    }

    /// The underlying rPGP secret key.
    pub fn inner(&self) -> &SignedSecretKey {
        &self.key
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey").field("fingerprints", &self.fingerprints()).finish()
    }
}

/// Reads one or more public keys (armored, as `gpg --export --armor` writes them; binary is
/// accepted too) and picks for each the newest valid encryption-capable (sub)key.
///
/// Errors with [`Error::Key`] if there is no key, a self-signature is invalid, or a key has
/// no usable encryption (sub)key (revoked, expired, or a signing-only key).
pub fn read_public_keys(armored: &[u8]) -> Result<Vec<PublicKey>, Error> {
    let (certs, _headers) = SignedPublicKey::from_reader_many(armored)
        .map_err(|e| Error::Key(format!("cannot parse the public key(s): {}", describe(&e))))?;
    let mut out = Vec::new();
    for cert in certs {
        let cert = cert.map_err(|e| Error::Key(format!("cannot parse a public key: {}", describe(&e))))?;
        let fpr = format!("{:X}", cert.fingerprint());
        cert.verify_bindings()
            .map_err(|e| Error::Key(format!("public key {fpr} has an invalid self-signature: {}", describe(&e))))?;
        let encryption = pick_encryption_component(&cert, &fpr)?;
        out.push(PublicKey { cert, encryption });
    }
    if out.is_empty() {
        return Err(Error::Key("no public key found (expected `gpg --export --armor` output)".into()));
    }
    Ok(out)
}

/// Reads a secret key (armored, as `gpg --export-secret-keys --armor` writes it; binary is
/// accepted too). The key may stay passphrase-protected; it is unlocked when a message is
/// opened.
pub fn read_secret_key(armored: &[u8]) -> Result<SecretKey, Error> {
    let (key, _headers) = SignedSecretKey::from_reader_single(armored)
        .map_err(|e| Error::Key(format!("cannot parse the secret key: {}", describe(&e))))?;
    let fpr = format!("{:X}", key.primary_key.fingerprint());
    key.verify_bindings()
        .map_err(|e| Error::Key(format!("secret key {fpr} has an invalid self-signature: {}", describe(&e))))?;
    let can_decrypt =
        key.primary_key.algorithm().can_encrypt() || key.secret_subkeys.iter().any(|s| s.key.algorithm().can_encrypt());
    if !can_decrypt {
        return Err(Error::Key(format!(
            "secret key {fpr} has no encryption-capable (sub)key, so it cannot open messages"
        )));
    }
    Ok(SecretKey { key: Box::new(key) })
}

fn pick_encryption_component(cert: &SignedPublicKey, fpr: &str) -> Result<Component, Error> {
    let now = Timestamp::now();
    if !cert.details.revocation_signatures.is_empty() {
        return Err(Error::Key(format!("public key {fpr} is revoked")));
    }
    let primary_sig = newest(
        cert.details
            .users
            .iter()
            .flat_map(|u| u.signatures.iter())
            .chain(cert.details.direct_signatures.iter())
            .filter(|s| {
                matches!(
                    s.typ(),
                    Some(
                        SignatureType::CertGeneric
                            | SignatureType::CertPersona
                            | SignatureType::CertCasual
                            | SignatureType::CertPositive
                            | SignatureType::Key
                    )
                )
            }),
    );
    if let Some(sig) = primary_sig
        && expired(cert.primary_key.created_at(), sig, now)
    {
        return Err(Error::Key(format!("public key {fpr} has expired")));
    }

    // Like gpg: the newest valid encryption subkey wins; the primary only if no subkey can.
    let mut best: Option<(Timestamp, usize)> = None;
    for (i, sub) in cert.public_subkeys.iter().enumerate() {
        if !sub.key.algorithm().can_encrypt() {
            continue;
        }
        if sub.signatures.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation)) {
            continue;
        }
        let Some(binding) = newest(sub.signatures.iter().filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)))
        else {
            continue;
        };
        if !allows_encryption(&binding.key_flags()) || expired(sub.key.created_at(), binding, now) {
            continue;
        }
        let created = sub.key.created_at();
        if best.is_none_or(|(t, _)| created >= t) {
            best = Some((created, i));
        }
    }
    if let Some((_, i)) = best {
        return Ok(Component::Subkey(i));
    }
    if cert.primary_key.algorithm().can_encrypt() && primary_sig.is_none_or(|s| allows_encryption(&s.key_flags())) {
        return Ok(Component::Primary);
    }
    Err(Error::Key(format!(
        "public key {fpr} has no valid encryption-capable (sub)key (add one with `gpg --quick-add-key {fpr} cv25519 encr`)"
    )))
}

/// Keys without a key-flags subpacket predate flags; their algorithm decides.
fn allows_encryption(flags: &KeyFlags) -> bool {
    *flags == KeyFlags::default() || flags.encrypt_comms() || flags.encrypt_storage()
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map(Timestamp::as_secs).unwrap_or(0))
}

fn expired(created: Timestamp, sig: &Signature, now: Timestamp) -> bool {
    match sig.key_expiration_time() {
        Some(d) if d.as_secs() > 0 => u64::from(created.as_secs()) + u64::from(d.as_secs()) <= u64::from(now.as_secs()),
        _ => false,
    }
}
