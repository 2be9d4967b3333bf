//! Streaming OpenPGP sealing and opening for the host's storage capability.
//!
//! A plugin streams plaintext into the host; the host seals it on its way to storage with a
//! [`Sealer`] and opens it on the way back with [`open`]. What is written is what GnuPG 2.2 and
//! duplicity write and read (spec `duplicity-format.md` §5): an SKESK v4 (AES-256, iterated and
//! salted S2K with SHA-256) or one PKESK v3 per recipient, then SEIPD v1 with MDC, AES-256, ZIP
//! compression and a binary literal packet, with partial body lengths. Nothing newer (SEIPD v2,
//! AEAD, v6 packets) is ever written, because GnuPG 2.2 cannot read it.
//!
//! # Why rPGP
//! - It is pure Rust: the host needs no `gpg` binary, no gpg-agent and no C library, so
//!   sealing works the same on every machine the host runs on (and in wasm, should that ever
//!   be wanted).
//! - It streams in both directions: its `MessageBuilder` pulls plaintext from a reader and its
//!   SEIPD v1 decryptor has a streaming mode, so a 1 GiB volume never has to be in memory.
//! - The spec (§5.2, §8) verified rPGP 0.21 against GnuPG 2.2.40 and duplicity in both
//!   directions, including real duplicity volumes with 65M-iteration S2K and partial lengths.
//!   This crate's tests repeat that check against the `gpg` on the machine.
//!
//! # Integrity
//! rPGP's default SEIPD v1 mode reads the whole message into memory to check the MDC before
//! releasing plaintext. That does not scale to volumes, so [`open`] uses rPGP's streaming mode,
//! in which plaintext is released before the MDC is checked. [`Opened`] compensates:
//! - it holds back the last [`HOLDBACK`] bytes of plaintext until rPGP has verified the MDC
//!   and found no trailing data, so a consumer that reads everything it needs can never receive
//!   the final bytes of a modified message;
//! - any damage surfaces as an `Err` from [`std::io::Read::read`] before end of file is
//!   reported. The error carries an [`Error`] ([`Error::from_io`] recovers it).
//!
//! Bytes handed out before such an error are unauthenticated: a caller must treat the whole
//! stream as failed when it sees the error, and must not act on what it read until it has
//! seen end of file.

mod cfb;
mod compressed;
mod decrypt;
mod error;
mod keys;
mod open;
mod seal;

pub use error::Error;
pub use keys::{OpenKey, Passphrase, PublicKey, SealKey, SecretKey, read_public_keys, read_secret_key};
pub use open::{HOLDBACK, Opened, append_from, open};
pub use seal::{OwnedWrite, Sealer, SealingKey};
