//! IMAP's modified UTF-7 for folder names (RFC 3501 §5.1.3), the encoding
//! direction, for the folders a restore creates (the host's client decodes
//! the names it lists).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// The wire form of a decoded folder name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if matches!(c, '\x20'..='\x7e') && c != '&' {
            flush(&mut out, &mut pending);
            out.push(c);
        } else if c == '&' {
            flush(&mut out, &mut pending);
            out.push_str("&-");
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let (mut bits, mut nbits) = (0u32, 0u32);
    for unit in units.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 0x3f) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize] as char);
    }
    out.push('-');
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_examples() {
        assert_eq!(super::encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(super::encode("日本語"), "&ZeVnLIqe-");
        assert_eq!(super::encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(super::encode("INBOX"), "INBOX");
    }
}
