//! Host capabilities: what plugins can ask the host to do, each checked
//! against the plugin's grants. One module per capability holds its state and
//! policy in plain Rust; the `Host` trait impls are thin glue over it.

pub mod cache;
pub mod filesystem;
pub mod log;
pub mod rsync;
pub mod scratch;
pub mod secrets;
pub mod storage;

/// Largest chunk one `read` of a capability returns; larger requests are
/// clamped so a plugin cannot make the host allocate without bound.
pub const MAX_READ: u32 = 4 << 20;

/// Read up to `max` (clamped to [`MAX_READ`]) bytes, filling across short
/// reads so each boundary crossing carries a full chunk; fewer only at the end.
pub fn fill(reader: &mut dyn std::io::Read, max: u32) -> std::io::Result<Vec<u8>> {
    // Start small and grow fourfold: zeroing a 4 MiB buffer for each of ten
    // thousand small files costs more than reading them.
    const FIRST: usize = 16 << 10;
    let max = max.min(MAX_READ) as usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled >= max {
                break;
            }
            let grow = if buf.is_empty() { FIRST } else { buf.len() * 3 };
            buf.resize((filled + grow).min(max), 0);
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
