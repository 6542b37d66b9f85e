//! What the test's own process does between its clone and `execve`: give up host root.
//!
//! - As root (the normal farm set-up) the test joins its slot's user namespace (see
//!   `userns.rs`) and is root only over what that namespace owns. Its mount namespace stays the
//!   init's, which the host's user namespace owns: the test can neither mount nor unmount nor
//!   remount anything in it. If it unshares a mount namespace of its own, the kernel copies it
//!   with every mount locked (cannot be unmounted, remounted writable or moved).
//! - Without root, psy already runs the init in a user namespace; the test unshares a nested
//!   one, which gives the same (`mount -o remount,rw` no longer undoes the read-only view).
//! - As root where user namespaces are unavailable, the test keeps host uid 0 with Docker's
//!   default capability set (minus `CAP_MKNOD`: there is no device cgroup here).
//!
//! In every mode the seccomp filter (`seccomp.rs`) is installed last, unless the test inherits
//! it from the zygote. Privileged tests (`privileged = true`) skip all of this.

use crate::child::{check_or_fail, write_file};
use crate::error::SetupStep;
use crate::seccomp::{self, SockFprog};
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;

/// How a test is kept from the host's powers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confinement {
    /// `privileged = true`: the host view read-only, the test keeps host root's powers.
    Privileged,
    /// Root: an own root (pivot_root), and container root is an unprivileged host uid.
    SlotUserns,
    /// Rootless: an own root, in a user namespace nested in psy's.
    NestedUserns,
    /// Root without user namespaces: an own root, host uid 0 with Docker's capabilities.
    DockerCaps,
}

impl Confinement {
    /// A short description for warnings and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Confinement::Privileged => "privileged (host root's powers)",
            Confinement::SlotUserns => "user namespace per slot (container root is not host root)",
            Confinement::NestedUserns => "rootless (nested user namespace)",
            Confinement::DockerCaps => "host root with Docker's default capabilities",
        }
    }

    /// Whether the test must be cloned with its own address space (to unshare a user namespace).
    pub(crate) fn needs_own_memory(self) -> bool {
        self == Confinement::NestedUserns
    }
}

/// Docker's default capabilities (moby `oci/caps/defaults.go`) without `CAP_MKNOD`:
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, AUDIT_WRITE, SETFCAP.
pub(crate) const DOCKER_CAPS: u64 = 1 << 0
    | 1 << 1
    | 1 << 3
    | 1 << 4
    | 1 << 5
    | 1 << 6
    | 1 << 7
    | 1 << 8
    | 1 << 10
    | 1 << 13
    | 1 << 18
    | 1 << 29
    | 1 << 31;

/// Confines the calling (test) process. Async-signal-safe.
///
/// # Safety
/// Only in the test's process after its clone, before `execve`.
pub(crate) unsafe fn confine(
    confinement: Confinement,
    userns: RawFd,
    seccomp_prog: Option<&SockFprog>,
    status: RawFd,
) {
    let load_filter = |status| {
        if let Some(prog) = seccomp_prog {
            check_or_fail(status, SetupStep::Seccomp, seccomp::install(prog));
        }
    };
    match confinement {
        Confinement::Privileged => return,
        Confinement::SlotUserns => {
            let step = SetupStep::JoinUserNamespace;
            check_or_fail(status, step, libc::setns(userns, libc::CLONE_NEWUSER));
            // Raw system calls, not glibc's wrappers: those apply the change to every thread
            // glibc believes the process has (signalling each), and this child shares the memory
            // of a launcher that may have threads (psy itself, for direct starts). Seen from a
            // new PID namespace those threads do not exist and the wrapper spins forever.
            check_or_fail(status, step, raw_id_call(libc::SYS_setresgid, 0));
            check_or_fail(status, step, raw_id_call(libc::SYS_setgroups, 0));
            check_or_fail(status, step, raw_id_call(libc::SYS_setresuid, 0));
        }
        Confinement::NestedUserns => {
            let step = SetupStep::JoinUserNamespace;
            check_or_fail(
                status,
                step,
                libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS),
            );
            check_or_fail(status, step, write_file(c"/proc/self/setgroups", b"deny"));
            check_or_fail(status, step, write_file(c"/proc/self/gid_map", b"0 0 1"));
            check_or_fail(status, step, write_file(c"/proc/self/uid_map", b"0 0 1"));
        }
        Confinement::DockerCaps => {
            // The filter needs CAP_SYS_ADMIN (or no_new_privs) to install: before the drop.
            load_filter(status);
            drop_capabilities(status);
            return;
        }
    }
    load_filter(status);
}

/// Becomes `user` (`(uid, gid)`, no supplementary groups), if any: an image's `User`, last of
/// all (it gives up the capabilities the steps before need). Not rootless: there the test's
/// user namespace maps one id, and it stays root.
pub(crate) unsafe fn become_user(user: Option<(u32, u32)>, status: RawFd) {
    let Some((uid, gid)) = user else { return };
    let step = SetupStep::JoinUserNamespace;
    check_or_fail(status, step, raw_id_call(libc::SYS_setgroups, 0));
    check_or_fail(status, step, raw_id_call(libc::SYS_setresgid, gid.into()));
    check_or_fail(status, step, raw_id_call(libc::SYS_setresuid, uid.into()));
}

/// Keeps only [`DOCKER_CAPS`] in every set, bounding set included.
unsafe fn drop_capabilities(status: RawFd) {
    let step = SetupStep::DropCapabilities;
    for cap in 0..64 {
        // Past the kernel's last capability the read fails: stop there (asked this way, not
        // through errno, which this process shares with its launcher: see `shared_init`).
        if libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) < 0 {
            break;
        }
        if DOCKER_CAPS & (1 << cap) == 0 {
            let r = libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
            if r < 0 {
                crate::child::fail(status, step);
            }
        }
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let low = DOCKER_CAPS as u32;
    let high = (DOCKER_CAPS >> 32) as u32;
    let data = [
        Data {
            effective: low,
            permitted: low,
            inheritable: 0,
        },
        Data {
            effective: high,
            permitted: high,
            inheritable: 0,
        },
    ];
    check_or_fail(
        status,
        step,
        libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) as libc::c_int,
    );
}

/// `setresgid(id, id, id)`, `setresuid(id, id, id)` or `setgroups(0, NULL)` (`id` unused) for
/// this thread alone, as the kernel defines them.
unsafe fn raw_id_call(call: libc::c_long, id: libc::c_long) -> libc::c_int {
    let r = match call {
        libc::SYS_setgroups => libc::syscall(call, 0, std::ptr::null::<libc::gid_t>()),
        _ => libc::syscall(call, id, id, id),
    };
    r as libc::c_int
}
