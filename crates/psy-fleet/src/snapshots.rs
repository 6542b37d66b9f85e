//! Snapshots over the server: uploading one (only the blobs it lacks), and [`ServerBlobs`],
//! the [`BlobSource`] an agent materialises snapshots from.

use crate::retry::{retry_within, USER_PATIENCE};
use crate::{FleetClient, FleetError};
use psy_snapshot::{BlobSource, BoxError, LocalSnapshot, SnapshotError};

/// What uploading a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The snapshot's name: `sha256:...`.
    pub digest: String,
    pub files: usize,
    /// Distinct blobs the snapshot needs.
    pub blobs: usize,
    /// Of those, how many the server lacked and were sent, and their bytes.
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Server(#[from] FleetError),
    #[error(transparent)]
    Local(#[from] SnapshotError),
}

#[derive(serde::Serialize)]
struct MissingRequest<'a> {
    digests: &'a [String],
}

#[derive(serde::Deserialize)]
struct MissingBlobs {
    missing: Vec<String>,
}

#[derive(serde::Deserialize)]
struct SnapshotCreated {
    digest: String,
}

impl FleetClient {
    /// Stores `content` as a blob (`PUT /api/blobs/{digest}`, idempotent); its digest.
    pub fn put_blob(&self, content: &[u8]) -> Result<String, FleetError> {
        let digest = psy_snapshot::sha256(content);
        let _: serde_json::Value = self.put_bytes(&format!("/api/blobs/{digest}"), content)?;
        Ok(digest)
    }
}

/// Sends `local` to the server: asks which blobs it lacks, uploads those (re-read and checked,
/// so a file edited meanwhile is an error, not a wrong snapshot), then stores the snapshot.
pub fn upload(client: &FleetClient, local: &LocalSnapshot) -> Result<Uploaded, UploadError> {
    let blobs = local.snapshot.blobs();
    let mut missing: Vec<String> = Vec::new();
    // Asked in slices, so a huge tree is not one huge request.
    for chunk in blobs.chunks(10_000) {
        let answer: MissingBlobs =
            retry_within("asking which blobs the server lacks", USER_PATIENCE, || {
                client.post("/api/blobs/missing", &MissingRequest { digests: chunk })
            })?;
        missing.extend(answer.missing);
    }
    let mut uploaded_bytes = 0;
    for digest in &missing {
        let content = local.read_blob(digest)?;
        uploaded_bytes += content.len() as u64;
        let path = format!("/api/blobs/{digest}");
        let _: serde_json::Value =
            retry_within(&format!("uploading blob {digest}"), USER_PATIENCE, || {
                client.put_bytes(&path, &content)
            })?;
    }
    // Idempotent, as the uploads: each is retried while the server or its database is down.
    let created: SnapshotCreated = retry_within("storing the snapshot", USER_PATIENCE, || {
        client.post("/api/snapshots", &local.snapshot)
    })?;
    let digest = local.snapshot.digest();
    if created.digest != digest {
        return Err(UploadError::Local(SnapshotError::DigestMismatch {
            what: "snapshot",
            expected: digest,
            actual: created.digest,
        }));
    }
    tracing::info!(snapshot = %digest, files = local.snapshot.entries.len(), uploaded = missing.len(), uploaded_bytes, "snapshot uploaded");
    Ok(Uploaded {
        digest,
        files: local.snapshot.entries.len(),
        blobs: blobs.len(),
        uploaded_blobs: missing.len(),
        uploaded_bytes,
    })
}

/// Blobs and snapshot documents from the server (`GET /api/blobs/{digest}`,
/// `GET /api/snapshots/{digest}`): what `psy_snapshot::Prepared::ensure` fetches through on
/// an agent. Answers are checked against their digests by psy-snapshot.
#[derive(Debug, Clone)]
pub struct ServerBlobs(pub FleetClient);

impl BlobSource for ServerBlobs {
    fn blob(&self, digest: &str) -> Result<Vec<u8>, BoxError> {
        Ok(self.0.get_bytes(&format!("/api/blobs/{digest}"))?)
    }

    fn snapshot(&self, digest: &str) -> Result<Vec<u8>, BoxError> {
        Ok(self.0.get_bytes(&format!("/api/snapshots/{digest}"))?)
    }
}

/// The agent's [`crate::SnapshotMaterialiser`]: snapshots fetched from the server (files once
/// per machine, through [`ServerBlobs`]), materialised under the agent's work dir and prepared
/// once (`psy_snapshot::Prepared::ensure`).
#[derive(Debug, Clone)]
pub struct ServerSnapshots(pub FleetClient);

impl crate::SnapshotMaterialiser for ServerSnapshots {
    fn materialise(
        &self,
        digest: &str,
        manifest: &str,
        work_dir: &std::path::Path,
    ) -> Result<std::path::PathBuf, crate::SnapshotError> {
        let work = psy_snapshot::WorkDir::open(work_dir)?;
        let blobs = ServerBlobs(self.0.clone());
        Ok(psy_snapshot::Prepared::ensure(&work, digest, manifest, &blobs)?.root)
    }
}
