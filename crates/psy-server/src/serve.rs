//! Starting a server: migrate, bind, serve until told to stop, then finish the requests in
//! flight (graceful shutdown on SIGTERM or Ctrl-C).

use crate::api::{self, AppState};
use crate::metrics::Metrics;
use crate::{migrate, Database, ServerError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Applies the server's migrations to `db` (see [`crate::migrate`]).
pub async fn prepare(db: &Database) -> Result<(), ServerError> {
    migrate::migrate(db, migrate::MIGRATIONS).await
}

/// A listening socket on `addr` (`HOST:PORT`; port 0 picks a free one).
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// How long a lease lasts unless told otherwise (`--lease-seconds`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How a server behaves, beyond its database and socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long a lease lasts from its claim or its last heartbeat.
    pub lease: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lease: DEFAULT_LEASE,
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in flight
/// finish.
pub async fn serve(
    db: Database,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = local_addr(&listener)?;
    let state = AppState {
        db,
        metrics: Arc::new(Metrics::default()),
        lease: options.lease,
    };
    tracing::info!(%addr, database = %state.db.described(), "serving");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServerError::Serve { addr, source })?;
    tracing::info!(%addr, "stopped");
    Ok(())
}

/// The address `listener` is bound to.
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        addr: "(bound socket)".to_string(),
        source,
    })
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
