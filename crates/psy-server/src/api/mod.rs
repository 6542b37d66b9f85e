//! The HTTP API: the router, and one file per group of endpoints.
//!
//! Layers, outermost first: request counting ([`count_requests`]), the 503 of a server whose
//! migrations are not applied yet ([`require_migrated`]), authentication
//! ([`crate::auth::require_token`]), then routing. Authentication wraps the whole router
//! rather than each route, so no route can be added without it.

pub mod agents;
pub mod blobs;
pub mod error;
pub mod health;
pub mod leases;
pub mod openapi;
pub mod runs;
pub mod whoami;

use crate::metrics::{Metrics, UNMATCHED};
use crate::Database;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub metrics: Arc<Metrics>,
    /// How long a lease lasts from its claim or last heartbeat.
    pub lease: Duration,
    /// Set once the server's migrations are applied; until then every request but
    /// `/metrics` is a 503 (a server started while its database is down).
    pub migrated: Arc<AtomicBool>,
}

impl AppState {
    /// Whether the schema is migrated (requests may touch the tables).
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }
}

/// The route a request matched, passed from routing out to [`count_requests`].
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// The whole API, authentication included.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/whoami", get(whoami::whoami))
        .route("/api/agents", get(agents::list))
        .route("/api/agents/register", post(agents::register))
        .route("/api/agents/claim", post(leases::claim))
        .route("/api/leases/{id}/heartbeat", post(leases::heartbeat))
        .route("/api/leases/{id}/result", post(leases::result))
        .route("/api/leases/{id}/release", post(leases::release))
        .route("/api/leases/results", post(leases::results))
        .route(
            "/api/runs",
            get(runs::list)
                .post(runs::submit)
                .layer(DefaultBodyLimit::max(runs::MAX_SUBMISSION_BYTES)),
        )
        .route("/api/runs/{id}", get(runs::show))
        .route("/api/runs/{id}/changes", get(runs::changes))
        .route("/api/runs/{id}/cancel", post(runs::cancel))
        .route("/api/blobs/missing", post(blobs::missing))
        // Their handlers read the body themselves, after the role check, up to their limits.
        .route("/api/blobs/{digest}", get(blobs::get).put(blobs::put))
        .route("/api/snapshots", post(blobs::create_snapshot))
        .route("/api/snapshots/{digest}", get(blobs::get_snapshot))
        .route_layer(from_fn(label_route))
        .fallback(error::not_found)
        .with_state(state.clone());
    let service = tower::ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), count_requests))
        .layer(from_fn_with_state(state.clone(), require_migrated))
        .layer(from_fn_with_state(state, crate::auth::require_token))
        .service(routes);
    Router::new().fallback_service(service)
}

/// Answers 503 while the migrations are not applied (the database was down when the server
/// started): the tables may not exist yet. `/metrics` still answers (database down), and
/// `/healthz` says 503 itself.
async fn require_migrated(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.is_migrated() || matches!(request.uri().path(), "/metrics" | "/healthz") {
        return next.run(request).await;
    }
    error::unavailable(
        "the database is unavailable: this server has not applied its migrations yet \
         (it keeps trying); try again",
    )
}

/// Remembers the matched route on the response.
async fn label_route(matched: MatchedPath, request: Request, next: Next) -> Response {
    let label = RouteLabel(matched.as_str().to_string());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(label);
    response
}

/// Counts every answered request by route, method and status.
async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or(UNMATCHED, |label| label.0.as_str());
    let status = response.status().as_u16();
    tracing::debug!(method, route, status, "answered");
    state.metrics.record(route, &method, status);
    response
}
