//! Container cgroups made ahead of time and removed afterwards by a background thread, so the
//! `mkdir`s and `rmdir`s (one per controller hierarchy, and memory cgroups are not cheap to
//! create or free) stay off a container's start-to-exit path. Limits are still written when
//! the group is handed out.

use crate::cgroup::{Cgroup, CgroupDriver, CgroupLimits};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Groups kept ready.
const READY: usize = 32;

/// Sends groups to the background remover.
#[derive(Debug, Clone)]
pub(crate) struct Remover(Sender<Chore>);

impl Remover {
    /// Removes `group` in the background (or now, if the remover is gone).
    pub(crate) fn remove(&self, group: Box<dyn Cgroup>) {
        if let Err(unsent) = self.0.send(Chore::Remove(group)) {
            if let Chore::Remove(group) = unsent.0 {
                let _ = group.remove();
            }
        }
    }
}

enum Chore {
    Remove(Box<dyn Cgroup>),
    /// Answered once every earlier removal is done.
    Flush(SyncSender<()>),
}

/// Blank groups `<run>/p<N>` waiting for a container, and a queue of groups to remove.
#[derive(Debug)]
pub(crate) struct CgroupPool {
    ready: Mutex<Option<Receiver<Box<dyn Cgroup>>>>,
    maker: Mutex<Option<JoinHandle<()>>>,
    chores: Mutex<Sender<Chore>>,
}

impl std::fmt::Debug for Chore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Chore::Remove(_) => "Remove",
            Chore::Flush(_) => "Flush",
        })
    }
}

impl CgroupPool {
    pub(crate) fn start(driver: Arc<dyn CgroupDriver>, run_group: String) -> std::io::Result<Self> {
        let (ready_tx, ready_rx) = sync_channel(READY);
        let maker = Arc::clone(&driver);
        let maker_thread = std::thread::Builder::new().name("psy-cgroup-pool".into()).spawn(move || {
            let blank = CgroupLimits::default();
            for n in 0.. {
                let name = format!("{run_group}/p{n:06}");
                match maker.create(&name, &blank) {
                    Ok(group) => {
                        if let Err(unused) = ready_tx.send(group) {
                            let _ = unused.0.remove(); // the sandbox closed
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("making a cgroup ahead of time failed; containers make their own: {e}");
                        return;
                    }
                }
            }
        })?;
        let (chores_tx, chores_rx) = channel::<Chore>();
        std::thread::Builder::new()
            .name("psy-cgroup-rm".into())
            .spawn(move || {
                for chore in chores_rx {
                    match chore {
                        Chore::Remove(group) => {
                            if let Err(e) = group.remove() {
                                tracing::warn!("removing a container's cgroup: {e}");
                            }
                        }
                        Chore::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(CgroupPool {
            ready: Mutex::new(Some(ready_rx)),
            maker: Mutex::new(Some(maker_thread)),
            chores: Mutex::new(chores_tx),
        })
    }

    /// A ready group with `limits` written, or `None` (the caller creates one itself).
    pub(crate) fn take(&self, limits: &CgroupLimits) -> Option<Box<dyn Cgroup>> {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        let group = ready.as_ref()?.try_recv().ok()?;
        match group.set_limits(limits) {
            Ok(()) => Some(group),
            Err(e) => {
                tracing::warn!("applying limits to a ready cgroup: {e}");
                self.remove_later(group);
                None
            }
        }
    }

    /// Removes `group` in the background.
    pub(crate) fn remove_later(&self, group: Box<dyn Cgroup>) {
        self.remover().remove(group);
    }

    /// A handle that removes groups in the background (for containers).
    pub(crate) fn remover(&self) -> Remover {
        Remover(
            self.chores
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Stops making groups and waits for every pending removal. Unused ready groups are left
    /// for the caller's removal of the whole run group.
    pub(crate) fn drain(&self) {
        drop(self.ready.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(maker) = self.maker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = maker.join(); // it stops at its next hand-over, which now fails
        }
        let (done_tx, done_rx) = sync_channel(1);
        let sent = self
            .chores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Chore::Flush(done_tx));
        if sent.is_ok() {
            let _ = done_rx.recv();
        }
    }
}
