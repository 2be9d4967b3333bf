//! duplicity's `Quote()`/`Unquote()` for paths in manifests: bytes with no
//! whitespace, backslash or quote are written as they are (non-UTF-8 too);
//! otherwise those characters become `\xNN` and the whole is put in `"…"`.

fn special(b: u8) -> bool {
    // Python's bytes `\s`: space, \t, \n, \v, \f, \r.
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b'\\' | b'"' | b'\'')
}

/// Quote a path for a manifest line.
pub fn quote(path: &[u8]) -> Vec<u8> {
    if !path.iter().any(|&b| special(b)) {
        return path.to_vec();
    }
    let mut out = vec![b'"'];
    for &b in path {
        if special(b) {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
    out
}

/// Reverse [`quote`]: a token starting with `"` has its `\xNN` escapes (and
/// Python's other backslash escapes) decoded.
pub fn unquote(token: &[u8]) -> Option<Vec<u8>> {
    let Some(inner) = token.strip_prefix(b"\"") else { return Some(token.to_vec()) };
    let inner = inner.strip_suffix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != b'\\' {
            out.push(inner[i]);
            i += 1;
            continue;
        }
        let next = *inner.get(i + 1)?;
        match next {
            b'x' => {
                let hex = std::str::from_utf8(inner.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            b'r' => {
                out.push(b'\r');
                i += 2;
            }
            b'\\' | b'"' | b'\'' => {
                out.push(next);
                i += 2;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_stay_raw_even_when_not_utf8() {
        assert_eq!(quote(b"sub/\xc3\xbcn\xc3\xaf\xc2\xa9ode.txt"), b"sub/\xc3\xbcn\xc3\xaf\xc2\xa9ode.txt");
        assert_eq!(quote(b"bad\xffname"), b"bad\xffname");
    }

    #[test]
    fn whitespace_and_quotes_are_escaped() {
        assert_eq!(
            quote(b"dir with space/file with space.txt"),
            br#""dir\x20with\x20space/file\x20with\x20space.txt""#
        );
        assert_eq!(quote(b"new\nline"), br#""new\x0aline""#);
        assert_eq!(quote(b"it's \"x\" \\"), br#""it\x27s\x20\x22x\x22\x20\x5c""#);
    }

    #[test]
    fn round_trip() {
        for p in [&b"a"[..], b"with space", b"new\nline", b"\xff\xfe quote\"'\\", b"tab\there"] {
            assert_eq!(unquote(&quote(p)).unwrap(), p);
        }
        assert_eq!(unquote(br#""bad\q""#), None);
    }
}
