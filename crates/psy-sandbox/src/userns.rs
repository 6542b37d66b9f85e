//! Per-slot user namespaces: as root, each running test's root is an unprivileged host uid.
//!
//! Like `podman --userns=auto` and Kubernetes' `hostUsers: false`, every concurrently running
//! container gets a *slot*: a user namespace mapping ids `0..65536` inside to a range of host ids
//! of its own (`base + slot * 65536`). Container root has capabilities only over what that user
//! namespace owns; tests in different slots are different host users, so they cannot signal,
//! trace or read each other. A slot is reused by the next container once its holder has exited.
//!
//! The namespaces are made once per slot and per run (a short-lived process that unshares and
//! is mapped from outside, as crun does for id-mapped mounts) and kept as descriptors: the
//! container's test process joins its slot with `setns`, and the host view, scratch and volumes
//! are id-mapped mounts over the same namespace (see `rootfs.rs`).

use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

/// Host ids given to each slot (one full 16-bit range: what most images' files use).
pub const IDS_PER_SLOT: u32 = 65536;

/// First host id of slot 0 unless `PSY_USERNS_BASE` says otherwise: high enough that no
/// distribution hands it to a user, with room for 16,384 slots below 2^31.
pub const DEFAULT_BASE: u32 = 0x4000_0000;

/// The user namespaces of one run's slots.
#[derive(Debug)]
pub(crate) struct UsernsSlots {
    base: u32,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    made: Vec<Arc<OwnedFd>>,
    free: Vec<usize>,
}

/// A slot held by one container; back to the pool when dropped (after the container exited).
#[derive(Debug)]
pub(crate) struct SlotLease {
    slots: Arc<UsernsSlots>,
    slot: usize,
    userns: Arc<OwnedFd>,
}

impl UsernsSlots {
    /// Makes slot 0's namespace now, so a host without user namespaces is found at once.
    pub(crate) fn new() -> io::Result<Arc<Self>> {
        let base = match std::env::var("PSY_USERNS_BASE") {
            Ok(v) => v.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("PSY_USERNS_BASE={v:?} is not a uid"),
                )
            })?,
            Err(_) => DEFAULT_BASE,
        };
        let slots = Arc::new(UsernsSlots {
            base,
            inner: Mutex::default(),
        });
        let first = slots.take()?;
        drop(first);
        Ok(slots)
    }

    /// A free slot, making a new namespace when every made one is in use.
    pub(crate) fn take(self: &Arc<Self>) -> io::Result<SlotLease> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match inner.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = inner.made.len();
                let first = self.first_id(slot)?;
                inner.made.push(Arc::new(make_userns(first)?));
                slot
            }
        };
        Ok(SlotLease {
            slots: Arc::clone(self),
            slot,
            userns: Arc::clone(&inner.made[slot]),
        })
    }

    fn first_id(&self, slot: usize) -> io::Result<u32> {
        u32::try_from(slot)
            .ok()
            .and_then(|s| s.checked_mul(IDS_PER_SLOT))
            .and_then(|offset| self.base.checked_add(offset))
            .filter(|first| {
                first
                    .checked_add(IDS_PER_SLOT)
                    .is_some_and(|end| end < u32::MAX)
            })
            .ok_or_else(|| {
                io::Error::other(format!(
                    "no host ids left for user namespace slot {slot} above base {}",
                    self.base
                ))
            })
    }
}

impl SlotLease {
    /// The slot's user namespace.
    pub(crate) fn userns(&self) -> RawFd {
        self.userns.as_raw_fd()
    }

    /// The host id container root (and its group) maps to.
    pub(crate) fn host_root(&self) -> u32 {
        self.slots.base + self.slot as u32 * IDS_PER_SLOT
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let mut inner = self.slots.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.free.push(self.slot);
    }
}

/// Whether the mount at `path` can be id-mapped over `userns` (tried on a detached clone).
pub(crate) fn can_idmap(path: &std::ffi::CStr, userns: RawFd) -> bool {
    // SAFETY: plain syscalls on a C string and descriptors we own.
    unsafe {
        let fd = sys::open_tree(path, sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint);
        if fd < 0 {
            return false;
        }
        let attr = sys::MountAttr {
            attr_set: sys::MOUNT_ATTR_IDMAP,
            userns_fd: userns as u64,
            ..sys::MountAttr::default()
        };
        let ok = sys::mount_setattr(fd, c"", libc::AT_EMPTY_PATH as libc::c_uint, &attr) == 0;
        libc::close(fd);
        ok
    }
}

/// A new user namespace mapping `0..IDS_PER_SLOT` to host ids from `first`.
fn make_userns(first: u32) -> io::Result<OwnedFd> {
    let (rx, tx) = sys::pipe(0)?;
    let mut args = sys::CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: fork-like clone; the child only closes, reads and exits (async-signal-safe).
    let pid = unsafe { sys::clone3(&mut args) };
    if pid == 0 {
        // SAFETY: raw syscalls in the child; waits until the parent closes its write end.
        unsafe {
            libc::close(tx.as_raw_fd());
            let mut byte = 0u8;
            libc::read(rx.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = pid as libc::pid_t;
    let map = format!("0 {first} {IDS_PER_SLOT}");
    let result = write_map(pid, "uid_map", &map)
        .and_then(|()| write_map(pid, "gid_map", &map))
        .and_then(|()| {
            let path = CString::new(format!("/proc/{pid}/ns/user")).expect("no NUL");
            // SAFETY: plain open of a C string path.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                // SAFETY: a new fd we own.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        });
    drop(tx);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    result
}

fn write_map(pid: libc::pid_t, file: &str, map: &str) -> io::Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, map).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ids_do_not_overflow() {
        let slots = UsernsSlots {
            base: u32::MAX - IDS_PER_SLOT,
            inner: Mutex::default(),
        };
        assert!(slots.first_id(0).is_err());
        let slots = UsernsSlots {
            base: DEFAULT_BASE,
            inner: Mutex::default(),
        };
        assert_eq!(slots.first_id(1).unwrap(), DEFAULT_BASE + IDS_PER_SLOT);
    }
}
