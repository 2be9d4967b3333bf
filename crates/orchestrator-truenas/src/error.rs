//! Errors a person can act on: each names the NAS (its URL) and, for an
//! operation on a dataset, the dataset; none holds the API key.

use crate::transport::{TransportError, TransportErrorKind};

/// What kind of failure, for the host to map to its own outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The API key was refused, or its user may not do this.
    Auth,
    /// The dataset does not exist.
    DatasetNotFound,
    /// The snapshot does not exist (e.g. already deleted).
    SnapshotNotFound,
    /// TrueNAS refused to create or delete a snapshot (e.g. the name exists).
    SnapshotRefused,
    /// The NAS could not be reached (or did not answer in time).
    Unreachable,
    /// TLS failed: untrusted certificate, pin mismatch.
    Tls,
    /// The configuration cannot work (bad URL, bad name, plain HTTP over a network).
    Config,
    /// The NAS answered something this client does not understand.
    Protocol,
}

#[derive(Debug, thiserror::Error)]
pub enum TrueNasError {
    #[error(
        "TrueNAS {url} refused the API key{}: check api_key (create one under the user's \
         settings → API Keys on the web UI; a key looks like `<id>-<64 characters>`, and is shown only once)",
        reason_suffix(reason)
    )]
    WrongApiKey { url: String, reason: String },

    #[error(
        "TrueNAS {url} refused {what} on dataset {dataset:?}: {reason}; the API key's user lacks the \
         privilege (use a key of a user with the needed role)"
    )]
    NotAllowed { url: String, dataset: String, what: String, reason: String },

    #[error(
        "TrueNAS {url} has no dataset {dataset:?}: check the dataset name (pool/dataset, as the Datasets \
         page shows it, without /mnt/)"
    )]
    DatasetNotFound { url: String, dataset: String },

    #[error(
        "TrueNAS {url}: dataset {dataset:?} is not mounted (its mountpoint is {mountpoint}), so its files cannot be read"
    )]
    NotMounted { url: String, dataset: String, mountpoint: String },

    #[error("TrueNAS {url} has no snapshot {id:?} (dataset {dataset:?}): it was already deleted")]
    SnapshotNotFound { url: String, dataset: String, id: String },

    #[error("TrueNAS {url} refused to {action} snapshot {id:?} of dataset {dataset:?}: {reason}")]
    SnapshotRefused { url: String, dataset: String, id: String, action: &'static str, reason: String },

    #[error("TrueNAS {url}{}: {source}", dataset_suffix(dataset))]
    Connection {
        url: String,
        dataset: String,
        #[source]
        source: TransportError,
    },

    #[error("TrueNAS {url}{}: {reason}", dataset_suffix(dataset))]
    Config { url: String, dataset: String, reason: String },

    #[error("TrueNAS {url}{}: {reason}", dataset_suffix(dataset))]
    Protocol { url: String, dataset: String, reason: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() { String::new() } else { format!(" ({reason})") }
}

fn dataset_suffix(dataset: &str) -> String {
    if dataset.is_empty() { String::new() } else { format!(" (dataset {dataset:?})") }
}

impl TrueNasError {
    pub fn kind(&self) -> ErrorKind {
        use TransportErrorKind as H;
        match self {
            TrueNasError::WrongApiKey { .. } | TrueNasError::NotAllowed { .. } => ErrorKind::Auth,
            TrueNasError::DatasetNotFound { .. } | TrueNasError::NotMounted { .. } => ErrorKind::DatasetNotFound,
            TrueNasError::SnapshotNotFound { .. } => ErrorKind::SnapshotNotFound,
            TrueNasError::SnapshotRefused { .. } => ErrorKind::SnapshotRefused,
            TrueNasError::Connection { source, .. } => match source.kind {
                H::Unreachable | H::Timeout => ErrorKind::Unreachable,
                H::Tls => ErrorKind::Tls,
                H::Config => ErrorKind::Config,
                H::Auth => ErrorKind::Auth,
                H::NotFound | H::Protocol => ErrorKind::Protocol,
            },
            TrueNasError::Config { .. } => ErrorKind::Config,
            TrueNasError::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    /// The transport error underneath, if any (e.g. to tell a timeout).
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            TrueNasError::Connection { source, .. } => Some(source),
            _ => None,
        }
    }
}
