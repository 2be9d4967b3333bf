//! librsync signatures as duplicity writes them into sigtars: magic
//! `0x72730136` (MD4, classic rollsum), 8-byte strong sums, a block length
//! chosen per file. The host computes them as content streams past (WIT
//! `rsync`); the sink only chooses the parameters.

/// Length of the strong (MD4) sum kept per block.
pub const STRONG_LEN: u32 = 8;

/// duplicity 3.x's block length: `round512(isqrt(len))`, at least 512.
pub fn block_len(file_len: u64) -> u32 {
    let root = file_len.isqrt();
    let rounded = root.div_ceil(512).max(1) * 512;
    // A file so large its block would not fit in u32 still gets a whole number of 512s.
    u32::try_from(rounded).unwrap_or(u32::MAX - 511)
}

/// The whole signature of `data` in one go. Backups have the host compute
/// signatures as content streams past (the `rsync` capability); this is for
/// tests, which check the format against the spec.
#[cfg(test)]
pub fn one_shot(data: &[u8]) -> Vec<u8> {
    fast_rsync::Signature::calculate(
        data,
        fast_rsync::SignatureOptions { block_size: block_len(data.len() as u64), crypto_hash_size: STRONG_LEN },
    )
    .into_serialized()
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
    fn signature_sizes_follow_the_spec() {
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let sig = one_shot(&data);
        // The sizes the spec quotes: 1221 blocks, 14,664 bytes.
        assert_eq!(sig.len(), 14_664);
        assert_eq!(&sig[..4], &[0x72, 0x73, 0x01, 0x36]);
    }

    #[test]
    fn an_empty_file_is_the_header_alone() {
        assert_eq!(one_shot(&[]), vec![0x72, 0x73, 0x01, 0x36, 0, 0, 2, 0, 0, 0, 0, 8]);
    }
}
