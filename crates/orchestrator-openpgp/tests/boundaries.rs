//! Our own sealing and opening at the sizes where the decryption thread's chunking meets the
//! MDC at the end of the plaintext, and damage right at the end.

use orchestrator_openpgp::{Error, OpenKey, SealKey, Sealer, SealingKey, open};
use std::io::{Cursor, Read, Write};
use std::sync::LazyLock;

// One derivation for all messages: the S2K costs a tenth of a second each time.
static SEALING: LazyLock<SealingKey> = LazyLock::new(|| SealingKey::new(&SealKey::Passphrase("pw".into())).unwrap());
static OPENING: LazyLock<OpenKey> = LazyLock::new(|| OpenKey::Passphrase("pw".into()));

fn sealed(plain: &[u8], level: u32) -> Vec<u8> {
    let key = SEALING.clone().with_compression(level);
    let mut sealer = Sealer::with_key(Vec::new(), &key).unwrap();
    sealer.write_all(plain).unwrap();
    sealer.finish().unwrap()
}

fn opened(message: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    open(Cursor::new(message), &OPENING)?.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

#[test]
fn every_size_around_the_chunk_boundary_round_trips() {
    const MIB: usize = 1 << 20;
    let plain: Vec<u8> = (0..3 * MIB as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    // Uncompressed, the encrypted plaintext is the literal packet: its size follows the data's.
    // Around 1 MiB it crosses the sealer's fourth chunk edge (4 x 256 KiB, less the prefix):
    // chunks that fill up go out as partial bodies of their own.
    for len in (0..40).chain(MIB - 80..MIB + 40).chain(2 * MIB - 30..2 * MIB + 30) {
        let data = &plain[..len];
        assert!(opened(sealed(data, 0)).unwrap() == data, "length {len}");
    }
    assert!(opened(sealed(&plain, 1)).unwrap() == plain);
}

#[test]
fn damage_to_the_integrity_check_or_after_it_is_an_error() {
    let plain = vec![7u8; 100_000];
    let good = sealed(&plain, 0);
    for at in [good.len() - 1, good.len() - 10, good.len() - 22, good.len() - 23] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        assert!(matches!(opened(bad), Err(Error::Corrupt(_))), "flipped byte {at} from the end");
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(&good);
    assert!(opened(trailing).is_err(), "a second message after the first was accepted");
    assert!(opened(good).unwrap() == plain);
}
