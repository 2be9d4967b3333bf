//! Throughput of parallel deflate on text, random and mixed data:
//! `cargo run --release -p orchestrator-deflate --example deflate_throughput [level]`.

use orchestrator_deflate::ParallelDeflate;
use std::io::Write;
use std::time::Instant;

fn main() {
    let level: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(6);
    let len = 256 << 20;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    // Words in random order, like the benchmark's compressible files.
    let words: [&[u8]; 8] =
        [b"backup ", b"restore ", b"volume ", b"chain ", b"manifest ", b"signature ", b"delta ", b"archive "];
    let mut text = Vec::with_capacity(len + 16);
    while text.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.extend_from_slice(words[(x % 8) as usize]);
    }
    text.truncate(len);
    let random: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for (name, data) in [("text", &text), ("random", &random)] {
        for threads in [1, 2] {
            let start = Instant::now();
            let mut d = ParallelDeflate::with_threads(std::io::sink(), level, threads).unwrap();
            d.write_all(data).unwrap();
            d.finish().unwrap();
            let s = start.elapsed().as_secs_f64();
            println!("level {level} {name:6} {threads} thread(s): {:7.0} MB/s", len as f64 / s / 1e6);
        }
    }
}
