//! Dovecot (Debian's dovecot-imapd) on loopback: see the crate docs.
