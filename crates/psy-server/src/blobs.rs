//! Server schema version 3: content-addressed blobs and the snapshots made of them
//! (`psy submit` uploads them, agents materialise them).
//!
//! A blob is named by the sha256 of its content, checked on upload, so storing one twice is
//! harmless and storing the same content under two names impossible: uploads are idempotent
//! and deduplicated by the primary key. A snapshot (psy-snapshot's document: sorted entries
//! with their blob digests) is named by the sha256 of its canonical JSON and accepted only when
//! every blob it names is already stored, so an agent never finds one missing.

use crate::{Database, ServerError};
use psy_snapshot::Snapshot;

/// The migration, applied once by [`crate::migrate`].
pub const V3: &str = r#"
CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    size       BIGINT NOT NULL CHECK (size >= 0),
    content    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE snapshots (
    digest     TEXT PRIMARY KEY CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    -- The canonical JSON, served as stored (its sha256 is the digest).
    document   TEXT NOT NULL,
    files      INTEGER NOT NULL,
    bytes      BIGINT NOT NULL,
    submitter  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#;

/// The most bytes one blob may have (PostgreSQL's `bytea` holds up to 1 GiB).
pub const MAX_BLOB_BYTES: usize = 512 << 20;

/// The most digests one `missing` question may ask about.
pub const MAX_DIGESTS: usize = 1_000_000;

/// Which of `digests` the server does not have, in the order asked.
pub async fn missing(db: &Database, digests: &[String]) -> Result<Vec<String>, ServerError> {
    let client = db.client().await?;
    let op = format!("looking up {} blobs", digests.len());
    let rows = client
        .query(
            "SELECT d FROM unnest($1::text[]) WITH ORDINALITY AS asked(d, i)
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = asked.d)
             ORDER BY i",
            &[&digests],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Stores `content` as blob `digest` (already checked) unless it is there; true if stored now.
pub async fn put(db: &Database, digest: &str, content: &[u8]) -> Result<bool, ServerError> {
    let client = db.client().await?;
    let op = format!("storing blob {digest}");
    let inserted = client
        .execute(
            "INSERT INTO blobs (digest, size, content) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO NOTHING",
            &[&digest, &(content.len() as i64), &content],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    Ok(inserted == 1)
}

/// Blob `digest`'s content, if stored.
pub async fn get(db: &Database, digest: &str) -> Result<Option<Vec<u8>>, ServerError> {
    let client = db.client().await?;
    let op = format!("reading blob {digest}");
    let row = client
        .query_opt("SELECT content FROM blobs WHERE digest = $1", &[&digest])
        .await
        .map_err(|e| db.query_error(&op, e))?;
    Ok(row.map(|row| row.get(0)))
}

/// What storing a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStored {
    /// Stored (or already there).
    Stored { created: bool },
    /// Refused: these blobs are missing (digest, and the first path that needs it).
    MissingBlobs(Vec<(String, String)>),
}

/// Stores `snapshot` for `submitter` if every blob it names is stored.
pub async fn put_snapshot(
    db: &Database,
    snapshot: &Snapshot,
    submitter: &str,
) -> Result<SnapshotStored, ServerError> {
    let digest = snapshot.digest();
    let lacking = missing(db, &snapshot.blobs()).await?;
    if !lacking.is_empty() {
        let named = lacking
            .into_iter()
            .map(|d| {
                let path = snapshot
                    .entries
                    .iter()
                    .find(|e| e.digest == d)
                    .map(|e| e.path.clone())
                    .unwrap_or_default();
                (d, path)
            })
            .collect();
        return Ok(SnapshotStored::MissingBlobs(named));
    }
    let document = String::from_utf8_lossy(&snapshot.canonical_json()).into_owned();
    let client = db.client().await?;
    let op = format!("storing snapshot {digest}");
    let inserted = client
        .execute(
            "INSERT INTO snapshots (digest, document, files, bytes, submitter)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
            &[
                &digest,
                &document,
                &(snapshot.entries.len() as i32),
                &(snapshot.total_size() as i64),
                &submitter,
            ],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    Ok(SnapshotStored::Stored {
        created: inserted == 1,
    })
}

/// Snapshot `digest`'s canonical JSON, if stored.
pub async fn get_snapshot(db: &Database, digest: &str) -> Result<Option<String>, ServerError> {
    let client = db.client().await?;
    let op = format!("reading snapshot {digest}");
    let row = client
        .query_opt(
            "SELECT document FROM snapshots WHERE digest = $1",
            &[&digest],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?;
    Ok(row.map(|row| row.get(0)))
}
