//! OpenSSH's sshd (Debian's openssh-server) on loopback: see the crate docs.
