//! Starting a server: migrate, bind, serve until told to stop, then finish the requests in
//! flight (graceful shutdown on SIGTERM or Ctrl-C).
//!
//! `psy server` serves at once and migrates beside ([`serve_migrating`]): a server started
//! while its database is down answers 503 (with `Retry-After`) and keeps trying, with backoff,
//! until the database answers and the migrations are applied; then it serves.

use crate::api::{self, AppState};
use crate::metrics::Metrics;
use crate::{migrate, Database, ServerError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Applies the migrations, trying again with backoff (from 0.5 s, doubling to 10 s) while the
/// database cannot be reached or is restarting; an error that retrying cannot fix (a schema
/// newer than this psy) is returned.
pub async fn prepare_retrying(db: &Database) -> Result<(), ServerError> {
    let mut backoff =
        psy_fleet::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut failures = 0u32;
    loop {
        match prepare(db).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(database = %db.described(), "migrations applied after {failures} failed tries");
                }
                return Ok(());
            }
            Err(e) if e.is_transient() => {
                failures += 1;
                let pause = backoff.next_pause();
                tracing::warn!(
                    "cannot apply the migrations yet: {e}; retrying in {} ms (try {failures}); \
                     requests are answered 503 meanwhile",
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Serves the API on `listener`, migrated first when the database answers at once; else at
/// once while applying the migrations beside ([`prepare_retrying`]): requests are 503 until
/// they are applied. Stops when `shutdown` completes, or with the migrations' error if
/// retrying cannot fix it.
pub async fn serve_migrating(
    db: Database,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    match prepare(&db).await {
        Ok(()) => return serve(db, options, listener, shutdown).await,
        Err(e) if e.is_transient() => {
            tracing::warn!("cannot apply the migrations yet: {e}; serving 503 until they are")
        }
        Err(e) => return Err(e),
    }
    let migrated = Arc::new(AtomicBool::new(false));
    let (fail, failed_rx) = tokio::sync::oneshot::channel::<ServerError>();
    let migrating = {
        let (db, migrated) = (db.clone(), Arc::clone(&migrated));
        tokio::spawn(async move {
            match prepare_retrying(&db).await {
                Ok(()) => migrated.store(true, Ordering::Release),
                Err(e) => {
                    let _ = fail.send(e);
                }
            }
        })
    };
    let failed = Arc::new(Mutex::new(None));
    let stop = {
        let failed = Arc::clone(&failed);
        async move {
            tokio::select! {
                () = shutdown => {}
                Ok(e) = failed_rx => {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
        }
    };
    let served = serve_with(db, options, listener, stop, migrated).await;
    migrating.abort();
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    served
}

/// Serves the API on `listener` (its database already migrated: [`prepare`]) until
/// `shutdown` completes, then lets the requests in flight finish.
pub async fn serve(
    db: Database,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(
        db,
        options,
        listener,
        shutdown,
        Arc::new(AtomicBool::new(true)),
    )
    .await
}

async fn serve_with(
    db: Database,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    migrated: Arc<AtomicBool>,
) -> Result<(), ServerError> {
    let addr = local_addr(&listener)?;
    let state = AppState {
        db,
        metrics: Arc::new(Metrics::default()),
        lease: options.lease,
        migrated,
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
