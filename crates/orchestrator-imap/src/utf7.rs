//! IMAP's modified UTF-7 for folder names (RFC 3501 §5.1.3).
//!
//! Servers send and expect folder names in this encoding; people see the
//! decoded form. The decoder is strict (canonical encodings only) so that
//! every wire name maps to exactly one decoded name and back: a backup keyed
//! by decoded names can never have two server folders land on one name.

use std::fmt;

/// Why a wire name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the wire name where the problem starts.
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not valid modified UTF-7 at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Printable US-ASCII stands for itself, except `&`, which starts a shift.
fn is_direct(c: char) -> bool {
    matches!(c, '\x20'..='\x7e') && c != '&'
}

/// The wire form of a decoded folder name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            flush_shifted(&mut out, &mut pending);
            out.push(c);
        } else if c == '&' {
            flush_shifted(&mut out, &mut pending);
            out.push_str("&-");
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_shifted(&mut out, &mut pending);
    out
}

fn flush_shifted(out: &mut String, units: &mut Vec<u16>) {
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

fn sextet(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// The decoded form of a wire folder name.
pub fn decode(raw: &str) -> Result<String, DecodeError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    // Set after a shifted run, to reject `&..-&..-` (one run must be used).
    let mut just_shifted = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'&' {
            if !is_direct(b as char) {
                return Err(DecodeError { offset: i, reason: "only printable US-ASCII may appear unencoded" });
            }
            out.push(b as char);
            i += 1;
            just_shifted = false;
            continue;
        }
        let start = i;
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            just_shifted = false;
            continue;
        }
        if just_shifted {
            return Err(DecodeError { offset: start, reason: "two encoded runs in a row must be one" });
        }
        let (mut bits, mut nbits) = (0u32, 0u32);
        let mut units: Vec<u16> = Vec::new();
        loop {
            let Some(&c) = bytes.get(i) else {
                return Err(DecodeError { offset: start, reason: "`&` run is not closed with `-`" });
            };
            i += 1;
            if c == b'-' {
                break;
            }
            let Some(v) = sextet(c) else {
                return Err(DecodeError { offset: i - 1, reason: "invalid character in an encoded run" });
            };
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        if nbits >= 6 || bits != 0 {
            return Err(DecodeError { offset: start, reason: "encoded run does not end on a whole character" });
        }
        let decoded = String::from_utf16(&units)
            .map_err(|_| DecodeError { offset: start, reason: "encoded run is not valid UTF-16" })?;
        if decoded.chars().any(|c| is_direct(c) || c == '&') {
            return Err(DecodeError { offset: start, reason: "printable US-ASCII must not be encoded" });
        }
        out.push_str(&decoded);
        just_shifted = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: &[(&str, &str)] = &[
        ("INBOX", "INBOX"),
        ("Entw&APw-rfe", "Entwürfe"),
        ("&-", "&"),
        ("Tom &- Jerry", "Tom & Jerry"),
        ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
        ("&ZeVnLIqe-", "日本語"),
        ("Archiv/2024", "Archiv/2024"),
        ("&2D3eAA-", "😀"),
        ("a&AOQA9gD8-b", "aäöüb"),
        ("", ""),
    ];

    #[test]
    fn known_pairs_round_trip() {
        for (raw, name) in PAIRS {
            assert_eq!(decode(raw).as_deref(), Ok(*name), "decode {raw}");
            assert_eq!(encode(name), *raw, "encode {name}");
        }
    }

    #[test]
    fn every_char_class_round_trips() {
        let name = "x\u{7f}\u{1}é€😀&-~\t";
        assert_eq!(decode(&encode(name)).unwrap(), name);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: &[(&str, usize)] = &[
            ("Entw&APw", 4),   // not closed
            ("Entw&AP!-", 7),  // bad base64 character
            ("&AP-", 0),       // leftover bits
            ("&AGE-", 0),      // encodes "a": not canonical
            ("&APw-&APw-", 5), // two runs in a row
            ("&2D0-", 0),      // lone surrogate
            ("caf\u{e9}", 3),  // 8-bit byte unencoded
            ("tab\there", 3),  // control character unencoded
        ];
        for (raw, offset) in cases {
            let err = decode(raw).expect_err(raw);
            assert_eq!(err.offset, *offset, "{raw}: {err}");
        }
    }
}
