//! `POST /api/blobs/missing`, `PUT /api/blobs/{digest}`, `GET /api/blobs/{digest}` and
//! `POST /api/snapshots`, `GET /api/snapshots/{digest}`: what `psy submit` uploads and agents
//! read. Users upload; users and agents read.

use super::error::{body, ApiError};
use super::runs::MAX_SUBMISSION_BYTES;
use super::AppState;
use crate::blobs::{self, SnapshotStored, MAX_BLOB_BYTES, MAX_DIGESTS};
use crate::token::Role;
use crate::token_store::Caller;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use psy_snapshot::{is_digest, sha256, Snapshot};

/// The question of `POST /api/blobs/missing`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRequest {
    pub digests: Vec<String>,
}

/// Its answer: the digests asked about that the server lacks, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MissingBlobs {
    pub missing: Vec<String>,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobStored {
    pub digest: String,
    pub size: u64,
    /// False when the server had it already.
    pub created: bool,
}

/// The answer to storing a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotCreated {
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    /// False when the server had it already.
    pub created: bool,
}

/// The digest in the path, or the 400 to answer.
fn digest(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(digest) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if is_digest(&digest) {
        Ok(digest)
    } else {
        Err(ApiError::bad_request(format!(
            "{digest:?} is not a digest (sha256: and 64 lowercase hex digits)"
        )))
    }
}

/// A request's body, read after the caller's role was checked.
async fn read(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        ApiError::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("cannot read the body (at most {limit} bytes): {e}"),
        )
    })
}

/// Which of the given blobs the server lacks.
pub async fn missing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<MissingRequest>, JsonRejection>,
) -> Result<Json<MissingBlobs>, ApiError> {
    caller.require(Role::User)?;
    let request = body(request)?;
    if request.digests.len() > MAX_DIGESTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_DIGESTS} digests per question, got {}",
            request.digests.len()
        )));
    }
    if let Some(bad) = request.digests.iter().find(|d| !is_digest(d)) {
        return Err(ApiError::bad_request(format!("{bad:?} is not a digest")));
    }
    Ok(Json(MissingBlobs {
        missing: blobs::missing(&state.db, &request.digests).await?,
    }))
}

/// Stores a blob after checking its content has the digest it is put under.
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    content: Body,
) -> Result<Json<BlobStored>, ApiError> {
    // Users upload snapshots' files; agents their attempts' logs.
    caller.require_one_of(&[Role::User, Role::Agent])?;
    let digest = digest(path)?;
    let content = read(content, MAX_BLOB_BYTES).await?;
    let actual = sha256(&content);
    if actual != digest {
        return Err(ApiError::bad_request(format!(
            "the content put as {digest} has the digest {actual}"
        )));
    }
    let created = blobs::put(&state.db, &digest, &content).await?;
    tracing::debug!(%digest, bytes = content.len(), created, token = %caller.name, "blob stored");
    Ok(Json(BlobStored {
        digest,
        size: content.len() as u64,
        created,
    }))
}

/// A blob's content.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_one_of(&[Role::User, Role::Agent])?;
    let digest = digest(path)?;
    match blobs::get(&state.db, &digest).await? {
        Some(content) => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            content,
        )
            .into_response()),
        None => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            &format!("no blob {digest}"),
        )),
    }
}

/// Stores a snapshot whose blobs are all stored.
pub async fn create_snapshot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    document: Body,
) -> Result<Json<SnapshotCreated>, ApiError> {
    caller.require(Role::User)?;
    let document = read(document, MAX_SUBMISSION_BYTES).await?;
    let snapshot =
        Snapshot::from_json(&document, None).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let digest = snapshot.digest();
    match blobs::put_snapshot(&state.db, &snapshot, &caller.name).await? {
        SnapshotStored::Stored { created } => {
            tracing::info!(%digest, files = snapshot.entries.len(), created, token = %caller.name, "snapshot stored");
            Ok(Json(SnapshotCreated {
                digest,
                files: snapshot.entries.len() as u64,
                bytes: snapshot.total_size(),
                created,
            }))
        }
        SnapshotStored::MissingBlobs(lacking) => {
            let (first, path) = &lacking[0];
            Err(ApiError::bad_request(format!(
                "snapshot {digest} names {} blob(s) the server lacks (upload them first), e.g. {first} of {path:?}",
                lacking.len()
            )))
        }
    }
}

/// A snapshot's canonical JSON.
pub async fn get_snapshot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_one_of(&[Role::User, Role::Agent])?;
    let digest = digest(path)?;
    let document = blobs::get_snapshot(&state.db, &digest).await?;
    found("snapshot", &digest, "application/json", document)
}

/// The stored content as `content_type`, or the 404 naming what is not stored.
fn found<T: IntoResponse>(
    what: &str,
    digest: &str,
    content_type: &'static str,
    stored: Option<T>,
) -> Result<Response, ApiError> {
    match stored {
        Some(content) => Ok(([(header::CONTENT_TYPE, content_type)], content).into_response()),
        None => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            &format!("no {what} {digest}"),
        )),
    }
}
