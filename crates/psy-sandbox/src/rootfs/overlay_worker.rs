//! The overlay pool's worker (see `overlay_pool.rs`): a process forked by the launcher for one
//! image and slot, in a private mount namespace of its own, that keeps overlays of that image
//! ready as detached mounts and closes each after the container it was given to has exited.
//!
//! overlayfs only takes layers attached in the mount namespace of whoever creates it, so the
//! worker attaches the image's layers once (read-only, `nodev`, id-mapped over the slot's user
//! namespace where the filesystem allows, as an init would) on a small tmpfs of its own, and
//! mounts a tmpfs for the writable layers beside them. Per overlay it makes a fresh writable
//! layer (`<rw>/<id>/upper`, given to the slot's root, and `<rw>/<id>/work`) and the overlay
//! (`fsopen` + `fsconfig` + `fsmount`, `volatile`), and sends its descriptor to the launcher.
//! The worker keeps its own descriptor of each overlay it sent: the container's exit then only
//! drops its own reference, and the overlay's tear-down (an RCU grace period in `ovl_free_fs`)
//! happens here, when the worker closes it after the init's pidfd says it has exited; then it
//! removes the layer. The writable layers being on a tmpfs, nothing of them reaches a disk
//! (no journal on the start path), their pages are charged to the memory cgroup of the test
//! that writes them, and they vanish with the worker.
//!
//! Wire format (`SOCK_SEQPACKET`): worker → launcher `[id: u32]` with the overlay's descriptor,
//! or `[u32::MAX][errno: i32][what failed]` before it exits; launcher → worker `[id: u32]` with
//! the init's pidfd (or without one: the overlay was not used, close it now).

use super::build::set_attrs;
use crate::fdpass;
use crate::sys;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// Overlays the worker keeps ready (sent and not yet taken).
pub(super) const READY: usize = 2;
/// The id of an error message.
pub(super) const ERROR_ID: u32 = u32::MAX;

/// What the worker needs, made before the fork.
pub(super) struct WorkerPlan {
    /// `(layer directory, its mount point under `layers_at`)`, bottom first.
    pub(super) layers: Vec<(CString, CString)>,
    pub(super) layers_at: CString,
    /// overlayfs' `lowerdir`: the layers' mount points, top first, `:`-separated.
    pub(super) lowerdir: CString,
    /// Where the writable layers' tmpfs is mounted (`<layers_at>/rw`).
    pub(super) rw: CString,
    /// The directory of the run's attempts' writable directories: when it is removed (the run
    /// is over), the worker leaves.
    pub(super) parent: CString,
    pub(super) user_xattrs: bool,
    /// The slot's user namespace (the layers are id-mapped over it) and its root's host id.
    pub(super) userns: Option<(RawFd, u32)>,
}

const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// A failed step: what and `errno`.
type Failed = (&'static str, i32);

fn check(what: &'static str, r: libc::c_long) -> Result<libc::c_long, Failed> {
    match r {
        r if r < 0 => Err((what, sys::errno())),
        r => Ok(r),
    }
}

/// Runs the worker in the forked child; never returns.
///
/// # Safety
/// Call only in a child just forked (with `libc::fork`) for this, which then owns `sock`.
pub(super) unsafe fn run(plan: &WorkerPlan, sock: OwnedFd, launcher: libc::pid_t) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    if libc::getppid() != launcher {
        libc::_exit(0);
    }
    // Nothing of the launcher's but the socket and the slot's user namespace: a copy of a
    // status pipe's write end, say, would keep psy from ever seeing that init's end.
    close_all_but(&[sock.as_raw_fd(), plan.userns.map_or(-1, |(fd, _)| fd)]);
    let err = match setup(plan).and_then(|()| serve(plan, &sock)) {
        Ok(()) => libc::_exit(0),
        Err(e) => e,
    };
    let mut msg = Vec::with_capacity(8 + err.0.len());
    msg.extend_from_slice(&ERROR_ID.to_ne_bytes());
    msg.extend_from_slice(&err.1.to_ne_bytes());
    msg.extend_from_slice(err.0.as_bytes());
    let _ = fdpass::send(&sock, &msg, &[]);
    libc::_exit(1)
}

/// Closes every descriptor from 3 up but those in `keep`.
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    let mut from = 3;
    for fd in keep {
        if fd > from {
            libc::syscall(libc::SYS_close_range, from, fd - 1, 0);
        }
        from = fd + 1;
    }
    libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0);
}

/// A private mount namespace with the image's layers attached at `layers_at/<i>`.
unsafe fn setup(plan: &WorkerPlan) -> Result<(), Failed> {
    let userns = plan.userns.map_or(-1, |(fd, _)| fd);
    let mut fds = Vec::with_capacity(plan.layers.len());
    for (source, _) in &plan.layers {
        let fd = check(
            "cloning an image layer",
            sys::open_tree(
                source,
                sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            )
            .into(),
        )? as RawFd;
        let fd = OwnedFd::from_raw_fd(fd);
        let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV;
        check(
            "setting an image layer's attributes",
            set_attrs(fd.as_raw_fd(), attrs, userns, false).into(),
        )?;
        fds.push(fd);
    }
    check(
        "a mount namespace of its own",
        libc::unshare(libc::CLONE_NEWNS).into(),
    )?;
    let private = libc::MS_REC | libc::MS_PRIVATE;
    check(
        "making its mounts private",
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            private,
            std::ptr::null(),
        )
        .into(),
    )?;
    check(
        "the layers' tmpfs",
        libc::mount(
            c"tmpfs".as_ptr(),
            plan.layers_at.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=64k,mode=700".as_ptr().cast(),
        )
        .into(),
    )?;
    for ((_, target), fd) in plan.layers.iter().zip(fds) {
        check(
            "an image layer's mount point",
            libc::mkdir(target.as_ptr(), 0o700).into(),
        )?;
        check(
            "attaching an image layer",
            sys::move_mount_to(fd.as_raw_fd(), target).into(),
        )?;
    }
    check(
        "the writable layers' mount point",
        libc::mkdir(plan.rw.as_ptr(), 0o700).into(),
    )?;
    // As the attempt's writable directory was: `nosuid`, `nodev`.
    check(
        "the writable layers' tmpfs",
        libc::mount(
            c"tmpfs".as_ptr(),
            plan.rw.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=700".as_ptr().cast(),
        )
        .into(),
    )?;
    Ok(())
}

/// Paths of one writable layer in the pool.
struct Layer {
    dir: CString,
    upper: CString,
    work: CString,
}

impl Layer {
    fn new(pool: &CStr, id: u32) -> Self {
        let pool = pool.to_string_lossy();
        let c = |s: String| CString::new(s).expect("no NUL in a pool path");
        Layer {
            dir: c(format!("{pool}/{id}")),
            upper: c(format!("{pool}/{id}/upper")),
            work: c(format!("{pool}/{id}/work")),
        }
    }
}

/// Makes one overlay over a fresh writable layer `id`; returns its detached mount.
unsafe fn make_overlay(plan: &WorkerPlan, id: u32) -> Result<OwnedFd, Failed> {
    let layer = Layer::new(&plan.rw, id);
    for dir in [&layer.dir, &layer.upper, &layer.work] {
        check(
            "a writable layer's directory",
            libc::mkdir(dir.as_ptr(), 0o755).into(),
        )?;
    }
    if let Some((_, owner)) = plan.userns {
        // Container root owns its root directory (the upper one's attributes show there).
        check(
            "giving a writable layer to the slot's root",
            libc::chown(layer.upper.as_ptr(), owner, owner).into(),
        )?;
    }
    let fs = check(
        "fsopen(overlay)",
        libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), 1 as libc::c_uint),
    )? as RawFd;
    let fs = OwnedFd::from_raw_fd(fs);
    let set = |cmd: libc::c_uint, key: &CStr, value: Option<&CStr>| {
        let value = value.map_or(std::ptr::null(), CStr::as_ptr);
        let key = if cmd == FSCONFIG_CMD_CREATE {
            std::ptr::null()
        } else {
            key.as_ptr()
        };
        libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, key, value, 0)
    };
    // One `lowerdir` (top first), not `lowerdir+` per layer: that came with Linux 6.8, and
    // before 6.5 overlayfs takes `fsconfig` strings as legacy mount options.
    check(
        "overlay lowerdir",
        set(FSCONFIG_SET_STRING, c"lowerdir", Some(&plan.lowerdir)),
    )?;
    check(
        "overlay upperdir",
        set(FSCONFIG_SET_STRING, c"upperdir", Some(&layer.upper)),
    )?;
    check(
        "overlay workdir",
        set(FSCONFIG_SET_STRING, c"workdir", Some(&layer.work)),
    )?;
    // Thrown away after the attempt: nothing need reach the disk (see `image.rs`).
    check(
        "overlay volatile",
        set(FSCONFIG_SET_FLAG, c"volatile", None),
    )?;
    if plan.user_xattrs {
        check(
            "overlay userxattr",
            set(FSCONFIG_SET_FLAG, c"userxattr", None),
        )?;
    }
    check("creating the overlay", set(FSCONFIG_CMD_CREATE, c"", None))?;
    let mnt = check(
        "fsmount(overlay)",
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            sys::MOUNT_ATTR_NODEV,
        ),
    )? as RawFd;
    Ok(OwnedFd::from_raw_fd(mnt))
}

/// Closes the overlays `done` selects (the last reference: the tear-down happens here) and
/// removes their writable layers.
fn release(plan: &WorkerPlan, given: &mut Vec<Given>, done: impl Fn(&Given) -> bool) {
    let (gone, kept): (Vec<Given>, Vec<Given>) = given.drain(..).partition(done);
    *given = kept;
    for g in gone {
        let id = g.id;
        drop(g);
        let layer = Layer::new(&plan.rw, id);
        let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(layer.dir.as_bytes()));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// How often an idle worker looks whether its pool's directory is still there (ms).
const CHECK_MS: libc::c_int = 1000;

/// Whether the directory `dir` was removed.
unsafe fn removed(dir: &OwnedFd) -> bool {
    let mut st: libc::stat = std::mem::zeroed();
    libc::fstat(dir.as_raw_fd(), &mut st) == 0 && st.st_nlink == 0
}

/// Overlays sent and not yet released, and the pidfds of the inits using them.
struct Given {
    id: u32,
    /// Held, never read: dropping it (the last reference once the init is gone) tears the
    /// overlay down.
    _overlay: OwnedFd,
    init: Option<OwnedFd>,
}

/// Keeps [`READY`] overlays sent ahead; closes each once its init has exited (or it was not
/// used). Returns when the launcher is gone.
unsafe fn serve(plan: &WorkerPlan, sock: &OwnedFd) -> Result<(), Failed> {
    let parent = check(
        "opening the attempts' directory",
        libc::open(
            plan.parent.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .into(),
    )? as RawFd;
    let parent = OwnedFd::from_raw_fd(parent);
    let mut given: Vec<Given> = Vec::new();
    let mut next = 0u32;
    loop {
        if removed(&parent) {
            // The run is over (its writable directories were removed): so is the pool.
            return Ok(());
        }
        while given.iter().filter(|g| g.init.is_none()).count() < READY {
            let overlay = make_overlay(plan, next)?;
            if fdpass::send(sock, &next.to_ne_bytes(), &[overlay.as_raw_fd()]).is_err() {
                return Ok(());
            }
            given.push(Given {
                id: next,
                _overlay: overlay,
                init: None,
            });
            next += 1;
        }
        let mut polled: Vec<libc::pollfd> = std::iter::once(sock.as_raw_fd())
            .chain(
                given
                    .iter()
                    .filter_map(|g| g.init.as_ref().map(|i| i.as_raw_fd())),
            )
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let woken = libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, CHECK_MS);
        if woken < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return Err(("poll", sys::errno()));
        }
        if woken == 0 {
            continue;
        }
        // Inits that have exited: their overlays go (the tear-down happens here).
        let exited: Vec<RawFd> = polled[1..]
            .iter()
            .filter(|p| p.revents != 0)
            .map(|p| p.fd)
            .collect();
        release(plan, &mut given, |g| {
            g.init
                .as_ref()
                .is_some_and(|i| exited.contains(&i.as_raw_fd()))
        });
        if polled[0].revents == 0 {
            continue;
        }
        let mut buf = [0u8; 4];
        let (n, mut fds) = match fdpass::recv(sock, &mut buf) {
            Ok((4, fds)) => (4, fds),
            _ => return Ok(()),
        };
        debug_assert_eq!(n, 4);
        let id = u32::from_ne_bytes(buf);
        let Some(at) = given.iter().position(|g| g.id == id && g.init.is_none()) else {
            continue;
        };
        match fds.pop() {
            Some(init) => given[at].init = Some(init),
            None => release(plan, &mut given, |g| g.id == id),
        }
    }
}
