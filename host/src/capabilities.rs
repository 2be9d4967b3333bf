//! Host capabilities: what plugins can ask the host to do, each checked
//! against the plugin's grants. One module per capability holds its state and
//! policy in plain Rust; the `Host` trait impls are thin glue over it.

pub mod cache;
pub mod filesystem;
pub mod log;
pub mod scratch;
pub mod secrets;
pub mod storage;

/// Largest chunk one `read` of a capability returns; larger requests are
/// clamped so a plugin cannot make the host allocate without bound.
pub const MAX_READ: u32 = 4 << 20;

/// Read up to `max` (clamped to [`MAX_READ`]) bytes, filling across short
/// reads so each boundary crossing carries a full chunk; fewer only at the end.
pub fn fill(reader: &mut dyn std::io::Read, max: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max.min(MAX_READ) as usize];
    let mut filled = 0;
    while filled < buf.len() {
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
