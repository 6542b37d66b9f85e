//! Overlays made ahead: the launcher's side of the overlay pool.
//!
//! Mounting an image's overlay in the init took about 0.4 ms of each start, and its tear-down
//! when the init exited about 0.9 ms more (an expedited RCU grace period in `ovl_free_fs`),
//! which psy waited for before it saw the exit. Now, for a container in the image template
//! (root, a user namespace slot), a worker process per image and slot (`overlay_worker.rs`)
//! keeps overlays ready as detached mounts, each over a fresh writable layer on a tmpfs of the
//! worker's. A start takes one, writes the attempt's `/etc` files through it, and the init
//! attaches the mount (`move_mount`) instead of making it. After the start the init's pidfd
//! goes to the worker, which closes its own reference to the overlay once the init has
//! exited: the tear-down happens there, off the start and the exit, and so does the removal
//! of the writable layer. The attempt's `upper_dir` and `work_dir` stay empty.
//!
//! Every attempt still has a private, empty writable layer: a layer is made for one overlay,
//! and an overlay is given to one container. Nothing of the pool is on a disk: the layers are
//! on the worker's tmpfs, the overlays detached mounts held by the worker and the launcher;
//! all vanish with the worker, which dies with its launcher (`PR_SET_PDEATHSIG`) and leaves
//! when the run's writable directories are removed. When no overlay is ready, or the pool
//! cannot be used here, the init builds its overlay itself, as before.

use super::image::{layer_mounts, layers_at};
use super::overlay_worker::{self, WorkerPlan, ERROR_ID};
use crate::fdpass;
use crate::prepared::cstring;
use crate::spec::ImageRoot;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which overlays a pool makes: an image's layers, its xattr flavour, the slot (its root's
/// host id) and where the attempts' writable directories live.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    layers: Vec<PathBuf>,
    user_xattrs: bool,
    slot_root: Option<u32>,
    parent: PathBuf,
}

/// One pool: its worker (pid and socket; `None` once it failed or is gone).
struct Pool {
    key: Key,
    sock: Option<OwnedFd>,
    worker: libc::pid_t,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// A ready overlay taken for one start: give [`Taken::fd`] to the init, then [`release`] it
/// with the init's pidfd. Dropped unreleased (the start failed before), it goes back to its
/// worker without one, which closes it at once and makes another.
#[derive(Debug)]
pub(crate) struct Taken {
    fd: OwnedFd,
    id: u32,
    pool: usize,
    /// The init's pidfd, set by [`release`].
    init: Option<RawFd>,
}

impl Taken {
    /// The detached overlay mount the init attaches as its root.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sock) = pools.get(self.pool).and_then(|p| p.sock.as_ref()) else {
            return;
        };
        let fds: Vec<RawFd> = self.init.into_iter().collect();
        if let Err(e) = fdpass::send(sock, &self.id.to_ne_bytes(), &fds) {
            tracing::warn!("handing overlay {} back to its pool's worker: {e}", self.id);
        }
    }
}

/// The directory holding the attempts' writable directories (the parent of the one holding
/// `upper_dir`): the pool's layers are made beside them, on the same filesystem.
fn parent_of_attempts(image: &ImageRoot) -> Option<&Path> {
    let attempt = image.upper_dir.parent()?;
    (image.work_dir.parent() == Some(attempt))
        .then(|| attempt.parent())
        .flatten()
        .filter(|p| *p != Path::new("/") && !p.as_os_str().is_empty())
}

/// A ready overlay of `image` for the slot `userns` (descriptor, host id of its root); `None`
/// when none is ready (the init then makes its overlay itself).
pub(crate) fn take(image: &ImageRoot, userns: Option<(RawFd, u32)>) -> Option<Taken> {
    if !enabled() {
        return None;
    }
    let key = Key {
        layers: image.layers.clone(),
        user_xattrs: image.user_xattrs,
        slot_root: userns.map(|(_, id)| id),
        parent: parent_of_attempts(image)?.to_path_buf(),
    };
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let at = match pools.iter().position(|p| p.key == key) {
        Some(at) => at,
        None => {
            // The first start of an image and slot makes its own overlay, always (not only
            // when the new worker is slower than this start).
            reap_gone(&mut pools);
            let index = pools.len();
            pools.push(start(key, image, userns, index));
            return None;
        }
    };
    let pool = &mut pools[at];
    let sock = pool.sock.as_ref()?;
    let mut buf = [0u8; 512];
    let (n, mut fds) = match recv_ready(sock, &mut buf) {
        Ok(Some(got)) => got,
        Ok(None) => return None,
        Err(reason) => {
            tracing::warn!(
                "image overlays are made at each start (slower): the overlay pool for {}: {reason}",
                pool.key.parent.display()
            );
            pool.sock = None;
            return None;
        }
    };
    let (Some(fd), 4) = (fds.pop(), n) else {
        pool.sock = None;
        return None;
    };
    let id = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    Some(Taken {
        fd,
        id,
        pool: at,
        init: None,
    })
}

/// Whether the pool is used: `PSY_OVERLAY_POOL=0` in psy's environment turns it off (each
/// init then makes its overlay, as before the pool: for comparisons and as a way out).
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("PSY_OVERLAY_POOL").is_none_or(|v| v != "0"))
}

/// One ready overlay from the worker, if one is waiting; an error when the worker failed or
/// is gone.
fn recv_ready(sock: &OwnedFd, buf: &mut [u8]) -> Result<Option<(usize, Vec<OwnedFd>)>, String> {
    let mut poll = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling one descriptor we own, without waiting.
    if unsafe { libc::poll(&mut poll, 1, 0) } <= 0 {
        return Ok(None);
    }
    let (n, fds) = fdpass::recv(sock, buf).map_err(|e| format!("its worker's socket: {e}"))?;
    if n == 0 {
        return Err("its worker exited".into());
    }
    if n >= 8 && buf[..4] == ERROR_ID.to_ne_bytes() {
        let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let what = String::from_utf8_lossy(&buf[8..n]);
        return Err(format!(
            "its worker failed: {what}: {}",
            std::io::Error::from_raw_os_error(errno)
        ));
    }
    Ok(Some((n, fds)))
}

/// Hands the taken overlay back to its worker: with the init's pidfd when the init started
/// (the overlay is closed after it has exited), without when it did not (closed now).
pub(crate) fn release(mut taken: Taken, init: Option<RawFd>) {
    taken.init = init;
}

/// Reaps the workers that have exited (a worker leaves when its run's writable directories
/// are removed), so that a long-lived launcher collects no zombies.
fn reap_gone(pools: &mut [Pool]) {
    for pool in pools.iter_mut().filter(|p| p.worker > 0) {
        // SAFETY: reaping our own child without waiting.
        let r = unsafe { libc::waitpid(pool.worker, std::ptr::null_mut(), libc::WNOHANG) };
        if r != 0 {
            pool.worker = 0;
            pool.sock = None;
        }
    }
}

/// Starts the worker of a new pool; a pool without one when it cannot be started here.
fn start(key: Key, image: &ImageRoot, userns: Option<(RawFd, u32)>, index: usize) -> Pool {
    let (sock, worker) = match spawn_worker(image, &key.parent, userns) {
        Ok((sock, worker)) => (Some(sock), worker),
        Err(reason) => {
            tracing::warn!(
                "image overlays are made at each start (slower): no overlay pool {index} for {}: \
                 {reason}",
                key.parent.display()
            );
            (None, 0)
        }
    };
    Pool { key, sock, worker }
}

fn spawn_worker(
    image: &ImageRoot,
    parent: &Path,
    userns: Option<(RawFd, u32)>,
) -> Result<(OwnedFd, libc::pid_t), String> {
    // Where the worker covers a directory with its tmpfs: over none of the layers.
    let at = layers_at(image).map_err(|e| e.to_string())?;
    let plan = WorkerPlan {
        layers: layer_mounts(&image.layers, at).map_err(|e| e.to_string())?,
        layers_at: cstring("image layers", at).map_err(|e| e.to_string())?,
        lowerdir: cstring(
            "image layers",
            (0..image.layers.len())
                .rev()
                .map(|i| format!("{at}/{i}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
        .map_err(|e| e.to_string())?,
        rw: cstring("overlay pool", format!("{at}/rw")).map_err(|e| e.to_string())?,
        parent: cstring("overlay pool", parent).map_err(|e| e.to_string())?,
        user_xattrs: image.user_xattrs,
        userns,
    };
    let (ours, theirs) = fdpass::seqpacket_pair().map_err(|e| format!("a socket pair: {e}"))?;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // SAFETY: glibc's fork leaves the child's allocator usable; the child runs the worker and
    // never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(ours);
        // SAFETY: we are the child just forked for it.
        unsafe { overlay_worker::run(&plan, theirs, me) }
    }
    if pid < 0 {
        return Err(format!(
            "forking its worker: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((ours, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(upper: &str, work: &str) -> ImageRoot {
        ImageRoot {
            layers: vec![PathBuf::from("/store/layers/0")],
            upper_dir: PathBuf::from(upper),
            work_dir: PathBuf::from(work),
            user_xattrs: false,
            user: None,
            project_path: None,
        }
    }

    #[test]
    fn the_pool_lies_beside_the_attempts_writable_directories() {
        let i = image("/state/rw/a000001/upper", "/state/rw/a000001/work");
        assert_eq!(parent_of_attempts(&i), Some(Path::new("/state/rw")));
        // Upper and work apart, or an attempt directory at the top: no pool.
        assert_eq!(
            parent_of_attempts(&image("/state/rw/a/upper", "/x/work")),
            None
        );
        assert_eq!(parent_of_attempts(&image("/a/upper", "/a/work")), None);
    }
}
