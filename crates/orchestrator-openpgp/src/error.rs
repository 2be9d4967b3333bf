use std::{error::Error as StdError, fmt, io};

/// Why sealing or opening failed.
///
/// Messages say what to do about it and never contain a passphrase or key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The passphrase or secret key does not open this message (or the secret key's own
    /// passphrase is wrong). Damage inside the session-key packets also shows up here, because
    /// it is indistinguishable from a wrong key.
    #[error("wrong key: {0}")]
    WrongKey(String),
    /// The message is damaged, modified or truncated. Its plaintext must not be used.
    #[error("corrupt OpenPGP message: {0}")]
    Corrupt(String),
    /// A well-formed message that uses something this crate does not read (e.g. SED without
    /// integrity protection, an unknown algorithm).
    #[error("unsupported OpenPGP message: {0}")]
    Unsupported(String),
    /// Reading the message or writing the sealed output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A key given to this crate is unusable (unparsable, revoked, expired, cannot encrypt).
    #[error("unusable OpenPGP key: {0}")]
    Key(String),
}

impl Error {
    /// Recovers the [`Error`] that [`Opened`](crate::Opened)'s or [`Sealer`](crate::Sealer)'s
    /// `io` methods wrapped into an [`io::Error`]; any other `io::Error` becomes [`Error::Io`].
    pub fn from_io(err: io::Error) -> Error {
        if err.get_ref().is_some_and(|e| e.is::<Error>()) {
            let inner = err.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        if err.get_ref().is_some_and(|e| e.is::<InputError>()) {
            let inner = err.into_inner().expect("checked above");
            return Error::Io(inner.downcast::<InputError>().expect("checked above").0);
        }
        Error::Io(err)
    }

    /// An equal error; needed because an error is latched and reported on every later call.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::WrongKey(m) => Error::WrongKey(m.clone()),
            Error::Corrupt(m) => Error::Corrupt(m.clone()),
            Error::Unsupported(m) => Error::Unsupported(m.clone()),
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::Key(m) => Error::Key(m.clone()),
        }
    }

    /// Wraps this error into an `io::Error` for `Read`/`Write`, keeping it recoverable with
    /// [`Error::from_io`].
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::Io(e) => e.kind(),
            Error::WrongKey(_) => io::ErrorKind::PermissionDenied,
            Error::Corrupt(_) => io::ErrorKind::InvalidData,
            Error::Unsupported(_) => io::ErrorKind::Unsupported,
            Error::Key(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        err.into_io()
    }
}

/// Marks an error of the caller's input reader as it travels through rPGP, so that it is
/// reported as [`Error::Io`] and not mistaken for a damaged message.
#[derive(Debug)]
pub(crate) struct InputError(pub(crate) io::Error);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading the message failed: {}", self.0)
    }
}

impl StdError for InputError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// Walks an error chain. `io::Error::source` skips the custom error it wraps, so io errors
/// are descended through `get_ref` instead.
pub(crate) fn chain<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| match e.downcast_ref::<io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
        None => e.source(),
    })
}

/// Classifies an error rPGP raised while reading a message.
pub(crate) fn classify_read(err: &(dyn StdError + 'static)) -> Error {
    for e in chain(err) {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return ours.duplicate();
        }
        if let Some(InputError(io)) = e.downcast_ref::<InputError>() {
            return Error::Io(io::Error::new(io.kind(), io.to_string()));
        }
    }
    for e in chain(err) {
        if let Some(pgp_err) = e.downcast_ref::<pgp::errors::Error>() {
            match pgp_err {
                pgp::errors::Error::MdcError => {
                    return Error::Corrupt("integrity check (MDC) failed: the message was modified or damaged".into());
                }
                pgp::errors::Error::Unsupported { message, .. } | pgp::errors::Error::Unimplemented { message, .. } => {
                    return Error::Unsupported(message.clone());
                }
                _ => {}
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::UnexpectedEof
        {
            return Error::Corrupt("the message is truncated".into());
        }
    }
    Error::Corrupt(describe(err))
}

/// One line from an error and its causes, without repeats (rPGP often nests the same text).
pub(crate) fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
