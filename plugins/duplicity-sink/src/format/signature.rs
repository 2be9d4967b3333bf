//! librsync signatures as duplicity writes them into sigtars: magic
//! `0x72730136` (MD4, classic rollsum), 8-byte strong sums, a block length
//! chosen per file. Computed as data streams past, block by block, so a file
//! of any size needs only one block of memory.

use fast_rsync::{Signature, SignatureOptions};

/// Length of the strong (MD4) sum kept per block.
pub const STRONG_LEN: u32 = 8;
/// Size of the signature header (magic, block length, strong length).
const HEADER: usize = 12;

/// duplicity 3.x's block length: `round512(isqrt(len))`, at least 512.
pub fn block_len(file_len: u64) -> u32 {
    let root = file_len.isqrt();
    let rounded = root.div_ceil(512).max(1) * 512;
    // A file so large its block would not fit in u32 still gets a whole number of 512s.
    u32::try_from(rounded).unwrap_or(u32::MAX - 511)
}

/// A signature being computed over a stream.
pub struct SignatureWriter {
    block: usize,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl SignatureWriter {
    /// A signature of a file of `file_len` bytes (which decides the block length).
    pub fn new(file_len: u64) -> SignatureWriter {
        let block = block_len(file_len) as usize;
        let mut out = Vec::with_capacity(HEADER + (file_len as usize / block + 1) * 12);
        out.extend_from_slice(&Self::one_shot(&[], block as u32));
        SignatureWriter { block, pending: Vec::with_capacity(block), out }
    }

    fn one_shot(data: &[u8], block: u32) -> Vec<u8> {
        Signature::calculate(data, SignatureOptions { block_size: block, crypto_hash_size: STRONG_LEN })
            .into_serialized()
    }

    fn push_blocks(&mut self, data: &[u8]) {
        let sig = Self::one_shot(data, self.block as u32);
        self.out.extend_from_slice(&sig[HEADER..]);
    }

    /// Feed the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        if !self.pending.is_empty() {
            let take = (self.block - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < self.block {
                return;
            }
            let full = std::mem::take(&mut self.pending);
            self.push_blocks(&full);
            self.pending = full;
            self.pending.clear();
        }
        let whole = data.len() / self.block * self.block;
        if whole > 0 {
            self.push_blocks(&data[..whole]);
        }
        self.pending.extend_from_slice(&data[whole..]);
    }

    /// The complete signature (the last block may be short).
    pub fn finish(mut self) -> Vec<u8> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.push_blocks(&last);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_length_follows_duplicity_3() {
        // Spec §4.2: 5000 B → 512; 2,500,000 B → 2048.
        assert_eq!(block_len(0), 512);
        assert_eq!(block_len(5000), 512);
        assert_eq!(block_len(2_500_000), 2048);
        assert_eq!(block_len(1 << 40), 1_048_576);
    }

    #[test]
    fn streaming_equals_one_shot_for_any_chunking() {
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let expected = SignatureWriter::one_shot(&data, block_len(data.len() as u64));
        // The sizes the spec quotes: 1221 blocks, 14,664 bytes.
        assert_eq!(expected.len(), 14_664);
        assert_eq!(&expected[..4], &[0x72, 0x73, 0x01, 0x36]);
        for chunk in [1, 511, 2048, 65536, 1 << 20, data.len()] {
            let mut w = SignatureWriter::new(data.len() as u64);
            for c in data.chunks(chunk) {
                w.update(c);
            }
            assert_eq!(w.finish(), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn an_empty_file_is_the_header_alone() {
        let sig = SignatureWriter::new(0).finish();
        assert_eq!(sig, vec![0x72, 0x73, 0x01, 0x36, 0, 0, 2, 0, 0, 0, 0, 8]);
    }
}
