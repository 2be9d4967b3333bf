//! Data for the crate's tests.

// Each test crate uses a part of it.
#![allow(dead_code)]

/// `len` bytes of xorshift noise.
pub fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Repetitive text.
pub fn text(len: usize) -> Vec<u8> {
    b"backup restore volume chain manifest signature delta archive ".iter().copied().cycle().take(len).collect()
}

/// Text and random data interleaved in uneven runs, so blocks of both kinds
/// and blocks that mix them occur.
pub fn mixed(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        let run = (300_000 + (i * 77_777) % 400_000) as usize;
        let chunk = if i.is_multiple_of(2) { text(run) } else { random(run, i) };
        out.extend_from_slice(&chunk[..run.min(len - out.len())]);
        i += 1;
    }
    out
}
