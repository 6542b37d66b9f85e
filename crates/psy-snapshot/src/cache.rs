//! The agent's blob cache: each blob fetched once per machine, checked against its digest.

use crate::digest::sha256;
use crate::layout::{rename_into_place, WorkDir};
use crate::materialise::BlobSource;
use crate::SnapshotError;
use std::path::PathBuf;

/// Blobs of a work dir, fetched from a source when missing.
#[derive(Debug)]
pub struct BlobCache<'a> {
    work: &'a WorkDir,
}

impl<'a> BlobCache<'a> {
    pub fn new(work: &'a WorkDir) -> BlobCache<'a> {
        BlobCache { work }
    }

    /// The cached file of blob `digest`, fetched from `source` (and checked) if missing.
    pub fn get(&self, digest: &str, source: &dyn BlobSource) -> Result<PathBuf, SnapshotError> {
        let path = self.work.blob(digest)?;
        if path.exists() {
            return Ok(path);
        }
        let bytes = source.blob(digest).map_err(|source| SnapshotError::Fetch {
            what: "blob",
            digest: digest.to_string(),
            source,
        })?;
        let actual = sha256(&bytes);
        if actual != digest {
            return Err(SnapshotError::DigestMismatch {
                what: "blob",
                expected: digest.to_string(),
                actual,
            });
        }
        let temp = self.work.temp();
        std::fs::write(&temp, &bytes).map_err(SnapshotError::io(&temp, "cannot write a blob"))?;
        rename_into_place(&temp, &path)?;
        tracing::debug!(digest, bytes = bytes.len(), "blob fetched");
        Ok(path)
    }
}
