//! The API's error answers: a status and `{"error": "..."}`, never a token or a password.
//!
//! Every failure of the database (unreachable, restarting, a statement that failed) is a 503
//! with `Retry-After` and an error naming the operation and the database (without its
//! password): the clients (agents, `psy submit --wait`) retry those with backoff; nothing the
//! database does is a 500.

use crate::queue::QueueError;
use crate::ServerError;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request was refused or failed.
#[derive(Debug)]
pub enum ApiError {
    /// A refusal with its status and reason.
    Status(StatusCode, String),
    /// The database could not serve the request (503; the detail goes to the log).
    Unavailable(ServerError),
}

impl ApiError {
    /// A refusal with `status` and `why`.
    pub fn status(status: StatusCode, why: &str) -> ApiError {
        ApiError::Status(status, why.to_string())
    }

    /// A 400 for a request body that does not fit.
    pub fn bad_request(why: impl Into<String>) -> ApiError {
        ApiError::Status(StatusCode::BAD_REQUEST, why.into())
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        ApiError::Unavailable(e)
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Invalid(why) => ApiError::Status(StatusCode::BAD_REQUEST, why),
            QueueError::Forbidden(why) => ApiError::Status(StatusCode::FORBIDDEN, why),
            QueueError::NotFound(why) => ApiError::Status(StatusCode::NOT_FOUND, why),
            QueueError::Conflict(why) => ApiError::Status(StatusCode::CONFLICT, why),
            QueueError::Database(e) => ApiError::Unavailable(e),
        }
    }
}

/// Seconds a client is asked to wait before trying a request the database failed again.
pub const RETRY_AFTER_SECONDS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Status(status, message) => {
                (status, Json(serde_json::json!({ "error": message }))).into_response()
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "request failed on the database: answered 503");
                unavailable(&format!("the database is unavailable: {e}; try again"))
            }
        }
    }
}

/// A 503 saying `why`, with `Retry-After`.
pub fn unavailable(why: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": why, "retry_after_seconds": RETRY_AFTER_SECONDS })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// The body of a request, or the 400 to answer.
pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(t)| t)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The id in a request's path, or the 400 to answer.
pub(crate) fn id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The answer to an authenticated request for a path that does not exist.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {}", uri.path()),
    )
}
