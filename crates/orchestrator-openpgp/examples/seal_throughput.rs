//! Sealing and opening speed, and the cost of one passphrase derivation:
//! `cargo run --release -p orchestrator-openpgp --example seal_throughput`.

use orchestrator_openpgp::{OpenKey, SealKey, Sealer, open};
use std::io::{Read, Write};
use std::time::Instant;

fn main() {
    let len = 256 << 20;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let words: [&[u8]; 8] =
        [b"backup ", b"restore ", b"volume ", b"chain ", b"manifest ", b"signature ", b"delta ", b"archive "];
    let mut data = Vec::with_capacity(len + 16);
    // Half word salad, half random, in 1 MiB runs.
    while data.len() < len {
        for i in 0..(1 << 20) / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (data.len() >> 20) % 2 == 0 {
                data.extend_from_slice(words[(x % 8) as usize]);
            } else {
                data.extend_from_slice(&x.to_le_bytes());
            }
            let _ = i;
        }
    }
    data.truncate(len);
    let key = SealKey::Passphrase("benchmark passphrase".into());

    let start = Instant::now();
    let tiny = Sealer::new(Vec::new(), &key).unwrap().finish().unwrap();
    println!("seal an empty message: {:.3} s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let mut sealer = Sealer::new(Vec::new(), &key).unwrap();
    for chunk in data.chunks(1 << 16) {
        sealer.write_all(chunk).unwrap();
    }
    let sealed = sealer.finish().unwrap();
    let s = start.elapsed().as_secs_f64();
    println!(
        "seal {} MiB: {s:.2} s, {:.0} MB/s, {:.1}% of the size",
        len >> 20,
        len as f64 / s / 1e6,
        sealed.len() as f64 * 100.0 / len as f64
    );

    let start = Instant::now();
    let mut opened = Vec::with_capacity(len);
    open(std::io::Cursor::new(sealed), &OpenKey::Passphrase("benchmark passphrase".into()))
        .unwrap()
        .read_to_end(&mut opened)
        .unwrap();
    let s = start.elapsed().as_secs_f64();
    assert!(opened == data);
    println!("open {} MiB: {s:.2} s, {:.0} MB/s", len >> 20, len as f64 / s / 1e6);
    let start = Instant::now();
    let _ = open(std::io::Cursor::new(tiny), &OpenKey::Passphrase("benchmark passphrase".into()))
        .unwrap()
        .read_to_end(&mut Vec::new());
    println!("open an empty message: {:.3} s", start.elapsed().as_secs_f64());
}
