//! Where a sink's local cache lives.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `<cache_dir>/<sink>-<hash of target>`. The target is part of the name so
/// that pointing a sink at another target never mixes their metadata.
pub fn sink_cache_dir(cache_dir: &Path, sink: &str, target: &str) -> PathBuf {
    let hash = hex::encode(&Sha256::digest(target.as_bytes())[..6]);
    cache_dir.join(format!("{sink}-{hash}"))
}
