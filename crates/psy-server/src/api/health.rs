//! `/healthz` and `/metrics`: public, for load balancers and Prometheus.

use super::error::RETRY_AFTER_SECONDS;
use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// 200 when the database answers and the schema is migrated, 503 (with `Retry-After`)
/// otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let why = if !state.is_migrated() {
        "database unavailable: the server's migrations are not applied yet\n"
    } else if !state.db.is_up().await {
        "database unavailable\n"
    } else {
        return (StatusCode::OK, "ok\n").into_response();
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
        why,
    )
        .into_response()
}

/// The Prometheus text exposition of this process's counters and the queue's numbers.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let up = state.db.is_up().await;
    let queue = if up {
        crate::queue::stats::read(&state.db)
            .await
            .map_err(|e| tracing::warn!(error = %e, "metrics without the queue's numbers"))
            .ok()
    } else {
        None
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(up, queue),
    )
}
