//! The storage crate's one error type.

/// Why a storage operation failed. Each case carries a sentence that names
/// the object or target and never a secret value; the cases follow the
/// plugin API's error cases, so the runtime maps them one to one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The sink's configuration or keys are wrong.
    #[error("{0}")]
    Config(String),
    /// Refused: a reserved or unsafe name, or a wrong key.
    #[error("{0}")]
    PermissionDenied(String),
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The storage or the object uses something not supported.
    #[error("{0}")]
    Unsupported(String),
    /// The object's bytes are damaged.
    #[error("{0}")]
    Corrupt(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// A short description of the case, for people.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Config(_) => "configuration error",
            StorageError::PermissionDenied(_) => "permission denied",
            StorageError::NotFound(_) => "not found",
            StorageError::Io(_) => "i/o error",
            StorageError::Unsupported(_) => "not supported",
            StorageError::Corrupt(_) => "corrupt data",
            StorageError::Other(_) => "error",
        }
    }

    /// `kind: message`, the form used in logs and errors.
    pub fn describe(&self) -> String {
        format!("{}: {self}", self.kind())
    }
}
