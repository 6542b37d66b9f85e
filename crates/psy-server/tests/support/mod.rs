//! A server on a free port of 127.0.0.1, running on a thread of its own until dropped.

pub(crate) mod fleet;

use psy_server::{serve, Database};
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// A running server; dropping it shuts it down gracefully and waits.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Migrates `db` (when `migrate`), binds and serves.
    pub(crate) fn start(db: Database, migrate: bool) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            psy_server::testkit::block_on(async move {
                if migrate {
                    serve::prepare(&db)
                        .await
                        .expect("migrating the test schema");
                }
                let listener = serve::bind("127.0.0.1:0").await.expect("binding");
                addr_tx
                    .send(serve::local_addr(&listener).expect("bound address"))
                    .expect("the test is waiting");
                serve::serve(db, serve::Options::default(), listener, async {
                    let _ = stopped.await;
                })
                .await
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
