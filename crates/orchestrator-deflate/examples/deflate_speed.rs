//! Compression speed and ratio of `ParallelDeflate` on one file, on one
//! thread, at each level given (default 1):
//! `cargo run --release -p orchestrator-deflate --example deflate_speed -- FILE [LEVEL ...]`.
//! A benchmark, not a test: it prints MB/s and the stored share.

use orchestrator_deflate::ParallelDeflate;
use std::io::Write;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: deflate_speed FILE [LEVEL ...]");
    let mut levels: Vec<u32> = args.map(|l| l.parse().expect("a level is a number 0-9")).collect();
    if levels.is_empty() {
        levels.push(1);
    }
    let data = std::fs::read(&path)?;
    for level in levels {
        let start = Instant::now();
        let mut deflate = ParallelDeflate::with_threads(Vec::with_capacity(data.len()), level, 1)?;
        for piece in data.chunks(64 * 1024) {
            deflate.write_all(piece)?;
        }
        let out = deflate.finish()?;
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "level {level}: {:.0} MB/s, {:.1}% of {} bytes",
            data.len() as f64 / seconds / 1e6,
            out.len() as f64 * 100.0 / data.len() as f64,
            data.len()
        );
    }
    Ok(())
}
