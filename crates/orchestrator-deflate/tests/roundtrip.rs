//! Every stream inflates to its input with standard inflaters: flate2, gzip(1)
//! and Python's gzip module (what duplicity reads volumes with).

use orchestrator_deflate::{BLOCK, GzipWriter, ParallelDeflate};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

mod common;
use common::{mixed, random, text};

fn deflate(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
    let mut d = ParallelDeflate::with_threads(Vec::new(), level, threads).unwrap();
    // Uneven writes, as callers make them.
    for chunk in data.chunks(100_003) {
        d.write_all(chunk).unwrap();
    }
    d.finish().unwrap()
}

fn inflate(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(stream).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn raw_streams_inflate_to_their_input_at_every_size_and_level() {
    let sizes = [0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7];
    for len in sizes {
        for data in [text(len), random(len, len as u64), mixed(len)] {
            for (level, threads) in [(0, 1), (1, 2), (6, 3), (9, 1)] {
                let stream = deflate(&data, level, threads);
                assert!(inflate(&stream) == data, "len {len} level {level} threads {threads}");
            }
        }
    }
}

#[test]
fn text_shrinks_and_random_data_is_stored_not_grown_much() {
    // Level 1 is igzip's, the others zlib's: both must hold.
    for level in [1, 6] {
        let t = text(4 * BLOCK);
        assert!(deflate(&t, level, 2).len() < t.len() / 20, "level {level}");
        let r = random(4 * BLOCK, 9);
        let stored = deflate(&r, level, 2);
        // Stored blocks cost 5 bytes per 64 KiB.
        assert!(stored.len() <= r.len() + r.len() / 10_000 + 64, "level {level}: {} > {}", stored.len(), r.len());
        let m = mixed(8 * BLOCK);
        let out = deflate(&m, level, 2);
        assert!(out.len() < m.len() * 3 / 4, "level {level}: mixed data did not shrink: {}", out.len());
    }
}

/// Small files as a tar stream lays them out: random and text alternating
/// every few KiB, so most blocks mix both.
fn small_files(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        let run = 1_000 + (i * 7_919 % 15_000) as usize;
        let chunk = if i.is_multiple_of(2) { text(run) } else { random(run, i + 100) };
        out.extend_from_slice(&chunk[..run.min(len - out.len())]);
        i += 1;
    }
    out
}

#[test]
fn noise_between_small_text_files_is_stored_and_the_text_still_shrinks() {
    let data = small_files(6 * BLOCK + 123);
    let noise: usize = {
        // What the random runs add up to: the floor of any output.
        let mut total = 0;
        let mut at = 0;
        let mut i = 0u64;
        while at < data.len() {
            let run = (1_000 + (i * 7_919 % 15_000) as usize).min(data.len() - at);
            if !i.is_multiple_of(2) {
                total += run;
            }
            at += run;
            i += 1;
        }
        total
    };
    // The 14th run is random and 13,947 bytes long: its middle is stored as it is.
    let run_start: usize = (0..13u64).map(|i| 1_000 + (i * 7_919 % 15_000) as usize).sum();
    let middle = &data[run_start + 4_000..run_start + 5_000];
    for (level, threads) in [(1, 2), (6, 1)] {
        let stream = deflate(&data, level, threads);
        assert!(inflate(&stream) == data, "level {level}");
        assert!(stream.windows(middle.len()).any(|w| w == middle), "level {level}: the random run was not stored");
        // Random runs cost about their size, text about nothing.
        assert!(stream.len() < noise + noise / 10, "level {level}: {} for {noise} bytes of noise", stream.len());
    }
    // Runs at the edges of segments and blocks.
    let mut data = text(20_000);
    data.extend(random(3 * 4096, 5));
    data.extend(text(20_000));
    data.extend(random(BLOCK, 6));
    let stream = deflate(&data, 1, 1);
    assert!(inflate(&stream) == data);
}

#[test]
fn gzip_members_read_by_gzip_and_python() {
    for level in [1, 6] {
        gzip_member_read_by_gzip_and_python(level);
    }
    // The empty member is valid too.
    let gz = GzipWriter::new(Vec::new(), 6).unwrap().finish().unwrap();
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
    assert!(back.is_empty());
}

fn gzip_member_read_by_gzip_and_python(level: u32) {
    let data = mixed(3 * BLOCK + 12_345);
    let mut g = GzipWriter::new(Vec::new(), level).unwrap();
    g.write_all(&data).unwrap();
    let gz = g.finish().unwrap();

    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
    assert!(back == data, "flate2");

    for (program, args) in [
        ("gzip", vec!["-dc"]),
        ("python3", vec!["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"]),
    ] {
        let Ok(mut child) = Command::new(program).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()
        else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{program} is missing");
            continue;
        };
        let mut stdin = child.stdin.take().unwrap();
        let input = gz.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "{program} failed at level {level}");
        assert!(out.stdout == data, "{program} read something else at level {level}");
    }
}

#[test]
fn a_failing_output_is_an_error_not_a_hang() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut d = ParallelDeflate::with_threads(Full, 6, 2).unwrap();
    let data = random(10 * BLOCK, 3);
    let err = d.write_all(&data).and_then(|_| d.finish().map(|_| ())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
}
