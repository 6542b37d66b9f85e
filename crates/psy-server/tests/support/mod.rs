//! A server on a free port of 127.0.0.1, running on a thread of its own until dropped.

pub(crate) mod fleet;

use psy_server::{serve, Database};
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// How a test server starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Migrated first, then served.
    Migrated,
    /// Served on a schema left as it is.
    Unmigrated,
    /// Served at once, migrated beside (`psy server`).
    Migrating,
}

/// A running server; dropping it shuts it down gracefully and waits.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Migrates `db` (when `migrate`), binds and serves.
    pub(crate) fn start(db: Database, migrate: bool) -> TestServer {
        TestServer::start_with(
            db,
            if migrate {
                Start::Migrated
            } else {
                Start::Unmigrated
            },
        )
    }

    /// Binds and serves at once, migrating beside as `psy server` does: 503 until migrated.
    #[allow(dead_code)] // used by some test binaries only
    pub(crate) fn start_migrating(db: Database) -> TestServer {
        TestServer::start_with(db, Start::Migrating)
    }

    fn start_with(db: Database, start: Start) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            psy_server::testkit::block_on(async move {
                if start == Start::Migrated {
                    serve::prepare(&db)
                        .await
                        .expect("migrating the test schema");
                }
                let listener = serve::bind("127.0.0.1:0").await.expect("binding");
                addr_tx
                    .send(serve::local_addr(&listener).expect("bound address"))
                    .expect("the test is waiting");
                let stop = async {
                    let _ = stopped.await;
                };
                let options = serve::Options::default();
                if start == Start::Migrating {
                    serve::serve_migrating(db, options, listener, stop).await
                } else {
                    serve::serve(db, options, listener, stop).await
                }
                .expect("serving");
            })
        });
        let addr = addr_rx
            .recv()
            .expect("the server thread died before binding");
        TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
