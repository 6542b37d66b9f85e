//! Thin wrappers over the Linux syscalls the sandbox needs that neither `libc` nor `nix` wrap
//! (`clone3`, `open_tree`, `move_mount`, `mount_setattr`, `pidfd_send_signal`).
//!
//! Hand-written on purpose: the container's first process runs between `clone3` and `execve` in a
//! copy of a multi-threaded process, where only async-signal-safe calls are allowed (no allocation,
//! no locks). `nix`'s path arguments may allocate, and no crate exposes `clone3` with
//! `CLONE_PIDFD` plus fork-like (no new stack) semantics, so these are raw syscalls.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub(crate) const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(crate) const AT_RECURSIVE: libc::c_uint = 0x8000;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// `struct clone_args` of `clone3(2)`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct CloneArgs {
    pub(crate) flags: u64,
    pub(crate) pidfd: u64,
    pub(crate) child_tid: u64,
    pub(crate) parent_tid: u64,
    pub(crate) exit_signal: u64,
    pub(crate) stack: u64,
    pub(crate) stack_size: u64,
    pub(crate) tls: u64,
    pub(crate) set_tid: u64,
    pub(crate) set_tid_size: u64,
    pub(crate) cgroup: u64,
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct MountAttr {
    pub(crate) attr_set: u64,
    pub(crate) attr_clr: u64,
    pub(crate) propagation: u64,
    pub(crate) userns_fd: u64,
}

/// Fork-like `clone3` (no new stack): returns 0 in the child, the child's pid in the parent.
///
/// # Safety
/// In the child only async-signal-safe code may run until `execve` or `_exit`.
pub(crate) unsafe fn clone3(args: &mut CloneArgs) -> libc::c_long {
    libc::syscall(
        libc::SYS_clone3,
        args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    )
}

pub(crate) unsafe fn open_tree(path: &CStr, flags: libc::c_uint) -> RawFd {
    libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) as RawFd
}

pub(crate) unsafe fn move_mount_to(from_fd: RawFd, to: &CStr) -> libc::c_int {
    libc::syscall(
        libc::SYS_move_mount,
        from_fd,
        c"".as_ptr(),
        libc::AT_FDCWD,
        to.as_ptr(),
        MOVE_MOUNT_F_EMPTY_PATH,
    ) as libc::c_int
}

/// `mount_setattr(dirfd, path, flags, attr)`; pass `c""` with `AT_EMPTY_PATH` to act on a mount fd.
pub(crate) unsafe fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> libc::c_int {
    libc::syscall(
        libc::SYS_mount_setattr,
        dirfd,
        path.as_ptr(),
        flags,
        attr as *const MountAttr,
        std::mem::size_of::<MountAttr>(),
    ) as libc::c_int
}

/// `pivot_root(new_root, put_old)`.
pub(crate) unsafe fn pivot_root(new_root: &CStr, put_old: &CStr) -> libc::c_int {
    libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) as libc::c_int
}

/// A new, detached mount of `fstype` from `source` (`fsopen` + `fsconfig` + `fsmount`), so
/// that attributes only a detached mount takes (an id mapping) can be set before it is attached.
/// Returns the mount's descriptor, or -1 with `errno` set.
pub(crate) unsafe fn mount_detached(fstype: &CStr, source: &CStr, sync: bool, attrs: u64) -> RawFd {
    let fs = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) as RawFd;
    if fs < 0 {
        return -1;
    }
    let synced = !sync
        || libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_SET_FLAG,
            c"sync".as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        ) >= 0;
    let configured = synced
        && libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_SET_STRING,
            c"source".as_ptr(),
            source.as_ptr(),
            0,
        ) >= 0
        && libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        ) >= 0;
    let mnt = if configured {
        libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) as RawFd
    } else {
        -1
    };
    let err = errno();
    libc::close(fs);
    *libc::__errno_location() = err;
    mnt
}

/// Sends `signal` through a pidfd (immune to pid reuse).
pub(crate) fn pidfd_send_signal(pidfd: RawFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own; null siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn errno() -> i32 {
    // SAFETY: reading the thread's errno is always safe.
    unsafe { *libc::__errno_location() }
}

/// A close-on-exec pipe with extra `flags` (e.g. `O_NONBLOCK`): (read end, write end).
pub(crate) fn pipe(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
