//! CFB-128 decryption (as SEIPD v1 uses it: no resynchronisation) with the block cipher
//! run on many blocks at once.
//!
//! CFB encryption is serial: each block's keystream needs the previous block's ciphertext.
//! Decryption is not: every ciphertext block is known, so the keystream of a whole run of
//! blocks is one batch call of the cipher, which AES-NI pipelines eight blocks at a time.
//! `cfb-mode`'s `BufDecryptor` runs the cipher block by block, about five times slower.

use aes::cipher::{Block, BlockEncrypt, BlockSizeUser, consts::U16};

/// Blocks per batch: 64 KiB of keystream, in the first-level cache.
const BATCH: usize = 4096;

/// A CFB-128 decryptor over any 128-bit block cipher, for data in pieces of any length.
pub(crate) struct CfbDecryptor<C: BlockEncrypt + BlockSizeUser<BlockSize = U16>> {
    cipher: C,
    /// The last whole ciphertext block, or the bytes so far of the current one.
    register: [u8; 16],
    /// The keystream of the current block while it is incomplete.
    keystream: [u8; 16],
    /// Bytes of the current block done; 16 at a block boundary.
    used: usize,
    scratch: Vec<Block<C>>,
}

impl<C: BlockEncrypt + BlockSizeUser<BlockSize = U16>> CfbDecryptor<C> {
    /// A decryptor starting from `iv`.
    pub(crate) fn new(cipher: C, iv: [u8; 16]) -> Self {
        CfbDecryptor { cipher, register: iv, keystream: [0; 16], used: 16, scratch: Vec::new() }
    }

    /// Decrypts `data` in place, continuing where the last call stopped.
    pub(crate) fn decrypt(&mut self, mut data: &mut [u8]) {
        // The rest of a block begun by the last call.
        while self.used < 16 && !data.is_empty() {
            let c = data[0];
            data[0] ^= self.keystream[self.used];
            self.register[self.used] = c;
            self.used += 1;
            data = &mut data[1..];
        }
        let whole = data.len() / 16 * 16;
        let (blocks, rest) = data.split_at_mut(whole);
        for batch in blocks.chunks_mut(BATCH * 16) {
            let n = batch.len() / 16;
            // The cipher's input for block i is ciphertext block i - 1.
            self.scratch.resize(n, Block::<C>::default());
            self.scratch[0].copy_from_slice(&self.register);
            for (input, previous) in self.scratch[1..].iter_mut().zip(batch.chunks_exact(16)) {
                input.copy_from_slice(previous);
            }
            self.register.copy_from_slice(&batch[(n - 1) * 16..]);
            let keystream = &mut self.scratch[..n];
            self.cipher.encrypt_blocks(keystream);
            for (plain, key) in batch.chunks_exact_mut(16).zip(keystream.iter()) {
                let p = u128::from_ne_bytes(plain.try_into().expect("16 bytes"));
                let k = u128::from_ne_bytes(key.as_slice().try_into().expect("16 bytes"));
                plain.copy_from_slice(&(p ^ k).to_ne_bytes());
            }
        }
        if !rest.is_empty() {
            let mut block: Block<C> = self.register.into();
            self.cipher.encrypt_block(&mut block);
            self.keystream.copy_from_slice(&block);
            self.used = 0;
            for p in rest {
                let c = *p;
                *p ^= self.keystream[self.used];
                self.register[self.used] = c;
                self.used += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::KeyInit;
    use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};

    #[test]
    fn matches_cfb_mode_for_every_way_of_cutting_the_data() {
        let key = [7u8; 32];
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let mut expected = plain.clone();
        cfb_mode::Encryptor::<aes::Aes256>::new(&key.into(), &[0; 16].into()).encrypt(&mut expected);
        let ciphertext = expected.clone();
        for cuts in [vec![], vec![1], vec![15, 16, 17], vec![65_536 + 5, 70_000], vec![3, 100_000, 100_001, 199_999]] {
            let mut data = ciphertext.clone();
            let mut d = CfbDecryptor::new(aes::Aes256::new(&key.into()), [0; 16]);
            let mut at = 0;
            for cut in cuts.iter().copied().chain([data.len()]) {
                d.decrypt(&mut data[at..cut]);
                at = cut;
            }
            assert!(data == plain, "cuts {cuts:?}");
        }
    }
}
