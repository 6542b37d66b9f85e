//! `/healthz` and `/metrics`: public, for load balancers and Prometheus.

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

/// 200 when the database answers, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db.is_up().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
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
