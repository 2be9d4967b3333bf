//! `posix-rename@openssh.com` (rename(2) on the server: replaces the target
//! atomically) over an SFTP channel of our own. libssh2 implements the
//! extension but the `ssh2` crate does not expose it, and this workspace
//! allows no unsafe FFI; the request is three packets, so we speak them on a
//! second `sftp` subsystem channel of the same session, opened on first use.

use ssh2::{Channel, Session};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const EXTENSION: &[u8] = b"posix-rename@openssh.com";
const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_STATUS: u8 = 101;
const FXP_EXTENDED: u8 = 200;
const FX_OK: u32 = 0;

/// Longer replies are not SFTP status or version packets.
const MAX_REPLY: usize = 64 << 10;

/// The channel, once the server has said it has the extension.
pub(crate) struct PosixRename {
    channel: Channel,
    next_id: u32,
}

impl PosixRename {
    /// `Ok(None)` when the server does not offer the extension.
    pub(crate) fn open(session: &Session) -> io::Result<Option<PosixRename>> {
        let mut channel = session.channel_session()?;
        channel.subsystem("sftp")?;
        send(&mut channel, FXP_INIT, &3u32.to_be_bytes())?;
        let reply = receive(&mut channel)?;
        let mut fields = Fields(&reply);
        if fields.byte()? != FXP_VERSION {
            return Err(protocol("no SFTP version packet"));
        }
        fields.u32()?;
        while !fields.0.is_empty() {
            let (name, data) = (fields.string()?, fields.string()?);
            if name == EXTENSION && data == b"1" {
                return Ok(Some(PosixRename { channel, next_id: 1 }));
            }
        }
        Ok(None)
    }

    /// The server's SFTP status code and message when it is not OK.
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<Result<(), (i32, String)>> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut body = id.to_be_bytes().to_vec();
        for s in [EXTENSION, from.as_os_str().as_bytes(), to.as_os_str().as_bytes()] {
            put_string(&mut body, s);
        }
        send(&mut self.channel, FXP_EXTENDED, &body)?;
        let reply = receive(&mut self.channel)?;
        let mut fields = Fields(&reply);
        if fields.byte()? != FXP_STATUS || fields.u32()? != id {
            return Err(protocol("unexpected reply to posix-rename"));
        }
        let code = fields.u32()?;
        let message = String::from_utf8_lossy(fields.string().unwrap_or_default()).into_owned();
        Ok(if code == FX_OK { Ok(()) } else { Err((code as i32, message)) })
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn send(channel: &mut Channel, kind: u8, body: &[u8]) -> io::Result<()> {
    let mut packet = Vec::with_capacity(5 + body.len());
    packet.extend_from_slice(&(1 + body.len() as u32).to_be_bytes());
    packet.push(kind);
    packet.extend_from_slice(body);
    channel.write_all(&packet)?;
    channel.flush()
}

fn receive(channel: &mut Channel) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    channel.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_REPLY {
        return Err(protocol("SFTP packet of impossible length"));
    }
    let mut packet = vec![0; len];
    channel.read_exact(&mut packet)?;
    Ok(packet)
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The SFTP wire types, read front to back.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(protocol("truncated SFTP packet"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn string(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
