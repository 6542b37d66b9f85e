//! The agent's side of the queue: `POST /api/agents/claim`, `POST /api/leases/{id}/heartbeat`
//! and `POST /api/leases/{id}/result`.

use super::error::{body, id, ApiError};
use super::AppState;
use crate::queue::claim::{self, ClaimRequest, Claimed};
use crate::queue::lease::{self, HeartbeatRequest, Holder, Renewed};
use crate::queue::report::{self, Recorded, ResultReport};
use crate::token::Role;
use crate::token_store::Caller;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::{Extension, Json};
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

/// The caller presenting a lease, under the agent name its request gave.
fn holder(caller: &Caller, agent: &Option<String>) -> Holder {
    Holder {
        token_id: caller.token_id,
        token: caller.name.clone(),
        agent: agent.clone(),
    }
}
