//! The user's side of the queue: `POST /api/runs`, `GET /api/runs`, `GET /api/runs/{id}` and
//! `POST /api/runs/{id}/cancel`.

use super::error::{body, id, ApiError};
use super::AppState;
use crate::queue::runs::{self, Cancelled, RunChanges, RunDetail, RunSummary, Submission};
use crate::token::Role;
use crate::token_store::Caller;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::{Extension, Json};

/// The largest body `POST /api/runs` reads: a run of many jobs is one request.
pub const MAX_SUBMISSION_BYTES: usize = 256 << 20;

pub use psy_fleet::wire::Submitted;

/// Queues a run of jobs.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    submission: Result<Json<Submission>, JsonRejection>,
) -> Result<Json<Submitted>, ApiError> {
    caller.require(Role::User)?;
    let submission = body(submission)?;
    let run_id = runs::submit(&state.db, &caller.name, &submission).await?;
    Ok(Json(Submitted { run_id }))
}

/// The most recent runs, newest first, with their jobs counted by state.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    caller.require(Role::User)?;
    Ok(Json(runs::list(&state.db).await?))
}

/// One run with each job's state and latest result.
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<RunDetail>, ApiError> {
    caller.require(Role::User)?;
    Ok(Json(runs::show(&state.db, id(path)?).await?))
}

/// A run and its jobs changed since `?after=CURSOR` (every job without it).
pub async fn changes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
    uri: Uri,
) -> Result<Json<RunChanges>, ApiError> {
    caller.require(Role::User)?;
    let run_id = id(path)?;
    let after = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="));
    Ok(Json(runs::changes(&state.db, run_id, after).await?))
}

/// Cancels a run.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Cancelled>, ApiError> {
    caller.require(Role::User)?;
    Ok(Json(runs::cancel(&state.db, id(path)?).await?))
}
