//! The agent's side of the queue: `POST /api/agents/claim`, `POST /api/leases/{id}/heartbeat`,
//! `POST /api/leases/{id}/result`, `POST /api/leases/results` (a batch) and
//! `POST /api/leases/{id}/release`.

use super::error::{body, id, ApiError};
use super::AppState;
use crate::queue::claim::{self, ClaimRequest, Claimed};
use crate::queue::lease::{self, HeartbeatRequest, Holder, Renewed};
use crate::queue::release::{self, ReleaseRequest, Released};
use crate::queue::report::{self, Recorded, ResultReport};
use crate::token::Role;
use crate::token_store::Caller;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use psy_fleet::wire::{BatchOutcome, BatchRecorded, Refusal, ResultBatch, MAX_RESULTS_PER_BATCH};
use std::time::Instant;

/// Leases the jobs the calling agent should run next.
pub async fn claim(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<ClaimRequest>, JsonRejection>,
) -> Result<Json<Claimed>, ApiError> {
    caller.require(Role::Agent)?;
    let request = body(request)?;
    let started = Instant::now();
    let claimed = claim::claim(&state.db, &request, caller.token_id, state.lease).await;
    state.metrics.observe_claim(started.elapsed());
    Ok(Json(claimed?))
}

/// Extends a lease.
pub async fn heartbeat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
    request: Result<Json<HeartbeatRequest>, JsonRejection>,
) -> Result<Json<Renewed>, ApiError> {
    caller.require(Role::Agent)?;
    let lease_id = id(path)?;
    let request = body(request)?;
    let holder = holder(&caller, &request.agent);
    Ok(Json(
        lease::heartbeat(&state.db, lease_id, &holder, &request, state.lease).await?,
    ))
}

/// Records the result of a lease's attempt.
pub async fn result(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
    request: Result<Json<ResultReport>, JsonRejection>,
) -> Result<Json<Recorded>, ApiError> {
    caller.require(Role::Agent)?;
    let lease_id = id(path)?;
    let request = body(request)?;
    let holder = holder(&caller, &request.agent);
    let started = Instant::now();
    let recorded = report::record(&state.db, lease_id, &holder, &request).await;
    state.metrics.observe_report(started.elapsed());
    Ok(Json(recorded?))
}

/// Gives a lease back: its job is queued again at once.
pub async fn release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<i64>, PathRejection>,
    request: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<Json<Released>, ApiError> {
    caller.require(Role::Agent)?;
    let lease_id = id(path)?;
    let request = body(request)?;
    let holder = holder(&caller, &request.agent);
    Ok(Json(
        release::release(&state.db, lease_id, &holder, &request).await?,
    ))
}

/// Records several results, each under its own lease: one answer per result, in order (a
/// refused result does not refuse the others).
pub async fn results(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<ResultBatch>, JsonRejection>,
) -> Result<Json<BatchRecorded>, ApiError> {
    caller.require(Role::Agent)?;
    let batch = body(request)?.results;
    if batch.len() > MAX_RESULTS_PER_BATCH {
        return Err(ApiError::bad_request(format!(
            "a batch holds at most {MAX_RESULTS_PER_BATCH} results, got {}",
            batch.len()
        )));
    }
    let agent = batch.first().and_then(|item| item.report.agent.clone());
    let holder = holder(&caller, &agent);
    let started = Instant::now();
    let recorded = report::record_batch(&state.db, &holder, &batch).await;
    state.metrics.observe_report(started.elapsed());
    let results = batch
        .iter()
        .zip(recorded?)
        .map(|(item, outcome)| match outcome {
            Ok(recorded) => BatchOutcome {
                lease_id: item.lease_id,
                recorded: Some(recorded),
                refused: None,
            },
            Err(refused) => BatchOutcome {
                lease_id: item.lease_id,
                recorded: None,
                refused: Some(refusal(refused)),
            },
        })
        .collect();
    Ok(Json(BatchRecorded { results }))
}

/// A refused result of a batch, with the status a single report would have had.
fn refusal(e: crate::queue::QueueError) -> Refusal {
    match ApiError::from(e) {
        ApiError::Status(status, error) => Refusal {
            status: status.as_u16(),
            error,
        },
        // `record_batch` fails the whole batch instead.
        ApiError::Unavailable(e) => Refusal {
            status: 503,
            error: e.to_string(),
        },
    }
}

/// The caller presenting a lease, under the agent name its request gave.
fn holder(caller: &Caller, agent: &Option<String>) -> Holder {
    Holder {
        token_id: caller.token_id,
        token: caller.name.clone(),
        agent: agent.clone(),
    }
}
