//! Chunked reads: what one `read` of an object or a file hands over.

/// Largest chunk one `read` of a capability returns; larger requests are
/// clamped so a plugin cannot make the host allocate without bound.
pub const MAX_READ: u32 = 4 << 20;

/// Read up to `max` (clamped to [`MAX_READ`]) bytes, filling across short
/// reads so each boundary crossing carries a full chunk; fewer only at the end.
pub fn fill(reader: &mut dyn std::io::Read, max: u32) -> std::io::Result<Vec<u8>> {
    // Start small: reserving 4 MiB for each of ten thousand small files
    // costs more than reading them.
    fill_expecting(reader, max, 16 << 10)
}

/// [`fill`] into a buffer that starts with room for `expected` bytes (the
/// rest of a file, a decoder's chunk), so a chunk is read without growing
/// and copying its buffer.
pub fn fill_expecting(reader: &mut dyn std::io::Read, max: u32, expected: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let max = max.min(MAX_READ) as usize;
    let mut buf = Vec::with_capacity(expected.min(max));
    // `read_to_end` reads into the spare capacity without zeroing it first
    // (for files), retries interrupted reads, and checks for the end with a
    // small probe before it grows a full buffer.
    reader.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}
