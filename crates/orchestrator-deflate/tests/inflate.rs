//! `Inflater` (ISA-L's inflate) reads what `ParallelDeflate` and zlib write,
//! across any input boundaries, stops where the stream ends, and reports
//! damage and truncation as errors.

use orchestrator_deflate::{BLOCK, Inflater, ParallelDeflate, Wrapper};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

mod common;
use common::mixed;

fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    let mut d = ParallelDeflate::with_threads(Vec::new(), level, 2).unwrap();
    d.write_all(data).unwrap();
    d.finish().unwrap()
}

/// Inflates `stream` read through a buffer of `capacity` bytes.
fn inflate(stream: &[u8], wrapper: Wrapper, capacity: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Inflater::new(BufReader::with_capacity(capacity, stream), wrapper).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn our_streams_at_every_level_and_any_input_boundary() {
    for len in [0, 1, 70_000, BLOCK + 1, 3 * BLOCK + 12_345] {
        let data = mixed(len);
        for level in [0, 1, 6, 9] {
            let stream = deflate(&data, level);
            for capacity in [1, 7, 4096, 1 << 20] {
                if capacity < 4096 && len > BLOCK {
                    continue; // byte-at-a-time input is slow; the small sizes cover it
                }
                let back = inflate(&stream, Wrapper::Raw, capacity).unwrap();
                assert!(back == data, "len {len} level {level} capacity {capacity}");
            }
        }
    }
}

#[test]
fn zlib_streams_are_read_and_their_checksum_checked() {
    let data = mixed(2 * BLOCK);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(&data).unwrap();
    let stream = z.finish().unwrap();
    assert!(inflate(&stream, Wrapper::Zlib, 64 * 1024).unwrap() == data);

    // The Adler-32 is the last four bytes.
    let mut bad = stream.clone();
    *bad.last_mut().unwrap() ^= 1;
    let e = inflate(&bad, Wrapper::Zlib, 64 * 1024).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn the_stream_ends_where_deflate_ends_whatever_follows() {
    let data = mixed(BLOCK);
    let mut input = deflate(&data, 1);
    input.extend_from_slice(b"after the stream");
    let mut inflater = Inflater::new(BufReader::with_capacity(1000, &input[..]), Wrapper::Raw);
    let mut out = Vec::new();
    inflater.read_to_end(&mut out).unwrap();
    assert!(out == data);
    // What follows was at most read ahead, never inflated.
    let mut rest = Vec::new();
    inflater.get_mut().read_to_end(&mut rest).unwrap();
    assert!(b"after the stream".ends_with(&rest), "{rest:?}");
}

#[test]
fn damage_and_truncation_are_errors() {
    let data = mixed(BLOCK);
    let stream = deflate(&data, 1);
    let cut = inflate(&stream[..stream.len() / 2], Wrapper::Raw, 4096).unwrap_err();
    assert_eq!(cut.kind(), ErrorKind::InvalidData);
    assert!(cut.to_string().contains("ends early"), "{cut}");

    // Flipped bits in compressed blocks: an error, or at worst other bytes
    // (deflate has no checksum; OpenPGP's MDC catches those), never a hang.
    for at in [10, stream.len() / 3, stream.len() / 2] {
        let mut bad = stream.clone();
        bad[at] ^= 0x55;
        if let Ok(back) = inflate(&bad, Wrapper::Raw, 4096) {
            assert!(back != data || bad == stream, "damage at {at} went unseen");
        }
    }
    // A reserved block type is always an error.
    let e = inflate(&[0x07, 0, 0], Wrapper::Raw, 16).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
}

#[test]
fn fill_buf_hands_out_the_output_without_a_copy() {
    let data = mixed(BLOCK);
    let stream = deflate(&data, 6);
    let mut inflater = Inflater::new(&stream[..], Wrapper::Raw);
    let mut back = Vec::new();
    loop {
        let chunk = inflater.fill_buf().unwrap();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len().min(1000);
        back.extend_from_slice(&chunk[..n]);
        inflater.consume(n);
    }
    assert!(back == data);
}
