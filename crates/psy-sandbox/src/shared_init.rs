//! Cloning a container's init into the launcher's own address space (`CLONE_VM`).
//!
//! A fork-like clone copied the launcher's page tables for every container, and every page
//! either side wrote afterwards was copied again (copy-on-write), then unmapped when the init
//! exited: about 7% of all CPU of a suite of trivial tests. The init only reads its
//! [`Prepared`] and only makes raw syscalls (see `child.rs`), so it can run in the launcher's
//! memory on a stack of its own. That memory must outlive the init: it is kept here until the
//! kernel clears the init's tid word at its exit (`CLONE_CHILD_CLEARTID`), as threads do.
//!
//! The init (and the test it starts, until `execve`) shares the launcher's thread-local `errno`,
//! which the launcher may overwrite at any time: the zygote pipelines the next launch, and psy
//! itself (direct starts) has many threads. So the init never decides anything on `errno`
//! (`make_mountpoint` asks `stat`, the reaper asks `kill(pid, 0)`, capability drops ask
//! `PR_CAPBSET_READ`); errno only names the cause in a set-up error, where a clobbered value
//! could misname it. Once seen: an EEXIST read as EINVAL failed a container's start. Not used
//! with a user namespace (`CLONE_NEWUSER`), which keeps the fork path.

use crate::child;
use crate::error::SandboxError;
use crate::prepared::Prepared;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

/// Bytes of an init's stack (`container_init` needs a few frames and a 512-byte buffer).
const INIT_STACK_BYTES: usize = 128 << 10;

/// Starts `prepared`'s init with `flags` (namespaces, `CLONE_PIDFD`, maybe `CLONE_PARENT`);
/// returns its pid and pidfd.
pub(crate) fn start(
    prepared: Box<Prepared>,
    flags: u64,
) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
    let stack = InitStack::new().map_err(|source| SandboxError::Os {
        what: "init stack",
        source,
    })?;
    // With CLONE_PARENT the kernel uses the caller's exit signal (the zygote's SIGCHLD).
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let flags = flags | (libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID) as u64 | exit_signal;
    let flags = libc::c_int::try_from(flags).map_err(|_| SandboxError::Os {
        what: "namespaces (clone flags beyond 32 bits)",
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    let mut pidfd: libc::c_int = -1;
    let arg = &*prepared as *const Prepared as *mut libc::c_void;
    // SAFETY: the init runs `container_init` on its own stack and never returns; `prepared`
    // and the stack outlive it (kept in RUNNING until its tid word is cleared).
    let pid = unsafe {
        libc::clone(
            init_entry,
            stack.top(),
            flags,
            arg,
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_void>(),
            stack.tid,
        )
    };
    if pid < 0 {
        return Err(SandboxError::os("namespaces (clone)"));
    }
    keep_until_exit(Running { prepared, stack });
    // SAFETY: clone with CLONE_PIDFD stored a new fd we own here.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

extern "C" fn init_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the kept `Prepared`, alive until this init exits.
    unsafe { child::container_init(&*(arg as *const Prepared)) }
}

/// An init's stack, with its tid word (cleared by the kernel when the init exits) at the bottom.
struct InitStack {
    base: *mut libc::c_void,
    tid: *mut libc::pid_t,
}

impl InitStack {
    fn new() -> std::io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                INIT_STACK_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let tid = base.cast::<libc::pid_t>();
        // SAFETY: the mapping is ours and writable; nonzero until the kernel clears it.
        unsafe { tid.write_volatile(1) };
        Ok(InitStack { base, tid })
    }

    /// The initial stack pointer (the stack grows down from the end of the mapping, which is
    /// page-aligned and so 16-byte aligned).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping.
        unsafe { self.base.cast::<u8>().add(INIT_STACK_BYTES).cast() }
    }

    fn init_exited(&self) -> bool {
        // SAFETY: the word lies in our mapping; the kernel writes it from the exiting init.
        unsafe { self.tid.read_volatile() == 0 }
    }
}

impl Drop for InitStack {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; only dropped once its init has exited.
        unsafe { libc::munmap(self.base, INIT_STACK_BYTES) };
    }
}

/// What a running init uses of its launcher's memory.
struct Running {
    /// Read by the init; dropping it would also free the test's exec stack.
    #[allow(dead_code)]
    prepared: Box<Prepared>,
    stack: InitStack,
}

// SAFETY: the raw pointers are to a mapping this value owns; the only other user is the init,
// another task, which reads and exits.
unsafe impl Send for Running {}

/// Inits started from this address space that may still run.
static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Keeps `r` until its init exits, and frees what inits that have exited used.
fn keep_until_exit(r: Running) {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    running.retain(|r| !r.stack.init_exited());
    running.push(r);
}
