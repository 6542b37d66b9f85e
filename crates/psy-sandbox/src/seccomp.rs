//! The seccomp filter every hardened test runs under: calls tests never need fail with `EPERM`
//! (as in Docker's default profile; never a kill), everything else is allowed.
//!
//! The program is compiled once per set of allowances with `seccompiler` (rust-vmm's compiler,
//! also behind Firecracker) and installed by the test's process right before `execve` with a raw
//! `seccomp(2)`, which neither allocates nor locks.
//!
//! The filter accepts only the native architecture (x86_64 or aarch64): `seccompiler` kills a
//! process whose call comes through another ABI (a 32-bit i386 binary), because its filter cannot
//! be checked against that ABI's numbers. x32 calls carry the native arch with bit 30 set in the
//! number: they are listed too.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set once this process (the zygote) runs under the default filter: every container it starts
/// inherits it, so no test pays for compiling and loading its own (about 0.5-1 ms per process,
/// mostly the kernel's JIT changing page permissions).
static LAUNCHER_FILTERED: AtomicBool = AtomicBool::new(false);

/// Puts the calling single-threaded launcher under the default filter (none of the refused calls
/// is one a launcher or a container's init makes). Without root, `no_new_privs` comes first, as
/// the kernel requires; tests inherit it, which only stops set-uid programs from gaining ids
/// they could not have in a rootless container anyway.
pub(crate) fn filter_launcher() -> std::io::Result<()> {
    // SAFETY: trivial getter and plain prctl on ourselves.
    unsafe {
        if libc::geteuid() != 0 && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let prog = SockFprog::new(program(Allowances::default()));
    // SAFETY: a valid 'static program.
    if unsafe { install(&prog) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    LAUNCHER_FILTERED.store(true, Ordering::Release);
    Ok(())
}

/// Whether containers started from this process inherit the default filter.
pub(crate) fn launcher_filtered() -> bool {
    LAUNCHER_FILTERED.load(Ordering::Acquire)
}

/// What a test may do beyond the default profile (the manifest's `allow = [...]`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Allowances {
    /// `perf_event_open` (profilers, `perf stat`).
    pub perf: bool,
    /// `bpf` (tracing tools that load eBPF programs).
    pub bpf: bool,
}

/// `__X32_SYSCALL_BIT`: x32 calls are the native numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_BIT: i64 = 0x4000_0000;

/// Calls refused to every hardened test, with why.
fn refused() -> Vec<(i64, &'static str)> {
    let mut calls = vec![
        (libc::SYS_kexec_load, "loading a new kernel"),
        (libc::SYS_kexec_file_load, "loading a new kernel"),
        (libc::SYS_init_module, "loading kernel modules"),
        (libc::SYS_finit_module, "loading kernel modules"),
        (libc::SYS_delete_module, "unloading kernel modules"),
        (libc::SYS_clock_settime, "setting the host's clock"),
        (libc::SYS_clock_adjtime, "setting the host's clock"),
        (libc::SYS_settimeofday, "setting the host's clock"),
        (libc::SYS_adjtimex, "setting the host's clock"),
        (
            libc::SYS_keyctl,
            "the kernel keyrings (shared with the host)",
        ),
        (libc::SYS_add_key, "the kernel keyrings"),
        (libc::SYS_request_key, "the kernel keyrings"),
        (libc::SYS_reboot, "rebooting the host"),
        (libc::SYS_swapon, "the host's swap"),
        (libc::SYS_swapoff, "the host's swap"),
        (libc::SYS_acct, "process accounting of the host"),
        (libc::SYS_quotactl, "the host's disk quotas"),
        (
            libc::SYS_open_by_handle_at,
            "opening files by handle (escapes mounts)",
        ),
        (libc::SYS_lookup_dcookie, "kernel profiling internals"),
        (libc::SYS_syslog, "the host's kernel log"),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        (libc::SYS_iopl, "raw port IO"),
        (libc::SYS_ioperm, "raw port IO"),
        (libc::SYS_uselib, "obsolete loader interface"),
        (libc::SYS_ustat, "obsolete"),
        (libc::SYS__sysctl, "obsolete sysctl interface"),
        (libc::SYS_sysfs, "obsolete"),
    ]);
    calls
}

/// Compiles the filter for `allow`.
pub(crate) fn compile(allow: Allowances) -> Result<BpfProgram, seccompiler::BackendError> {
    let mut calls: Vec<i64> = refused().into_iter().map(|(nr, _)| nr).collect();
    if !allow.perf {
        calls.push(libc::SYS_perf_event_open);
    }
    if !allow.bpf {
        calls.push(libc::SYS_bpf);
    }
    #[cfg(target_arch = "x86_64")]
    {
        let x32: Vec<i64> = calls.iter().map(|nr| nr | X32_BIT).collect();
        calls.extend(x32);
    }
    let rules: BTreeMap<i64, Vec<SeccompRule>> = calls.into_iter().map(|nr| (nr, vec![])).collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    filter.try_into()
}

/// The compiled program for `allow`, compiled once per process for each of the four sets.
pub(crate) fn program(allow: Allowances) -> &'static [seccompiler::sock_filter] {
    static PROGRAMS: [OnceLock<BpfProgram>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let index = usize::from(allow.perf) | usize::from(allow.bpf) << 1;
    PROGRAMS[index].get_or_init(|| compile(allow).expect("the built-in seccomp filter compiles"))
}

/// `struct sock_fprog` of `seccomp(2)`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

impl SockFprog {
    pub(crate) fn new(program: &'static [seccompiler::sock_filter]) -> Self {
        SockFprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr(),
        }
    }
}

// SAFETY: points at a `'static` program that is never written.
unsafe impl Send for SockFprog {}
// SAFETY: as above.
unsafe impl Sync for SockFprog {}

/// Installs `prog` on the calling thread. Async-signal-safe: one syscall. Needs
/// `CAP_SYS_ADMIN` in the caller's user namespace (the test is root there) or no_new_privs.
///
/// # Safety
/// `prog` must point at a valid program.
pub(crate) unsafe fn install(prog: &SockFprog) -> libc::c_int {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    libc::syscall(
        libc::SYS_seccomp,
        SECCOMP_SET_MODE_FILTER,
        0,
        prog as *const SockFprog,
    ) as libc::c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowance_set_compiles() {
        for (perf, bpf) in [(false, false), (true, false), (false, true), (true, true)] {
            let prog = program(Allowances { perf, bpf });
            assert!(prog.len() > refused().len(), "{perf} {bpf}: {}", prog.len());
        }
    }

    #[test]
    fn allowing_perf_shortens_the_program() {
        let strict = compile(Allowances::default()).unwrap();
        let perf = compile(Allowances {
            perf: true,
            bpf: false,
        })
        .unwrap();
        assert!(perf.len() < strict.len());
    }
}
