//! Starting a container's init: everything between "here is a spec" and "here is its pid".
//! Runs in psy itself or, normally, in the zygote (see `zygote.rs`).

use crate::child;
use crate::error::SandboxError;
use crate::prepared::{IdMaps, Prepared};
use crate::spec::ContainerSpec;
use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What it takes to start one container's init.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) spec: ContainerSpec,
    /// `cgroup.procs` files the init joins.
    pub(crate) cgroup_procs: Vec<PathBuf>,
    /// Write end of the status pipe.
    pub(crate) status_tx: OwnedFd,
    /// A ready network namespace, or `None` for a new one.
    pub(crate) netns: Option<OwnedFd>,
    /// `(uid, gid)` to map in a new user namespace (unprivileged mode).
    pub(crate) unprivileged: Option<(u32, u32)>,
}

impl Launch {
    /// The namespaces of the clone.
    pub(crate) fn clone_flags(&self) -> u64 {
        let mut flags = libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_PIDFD;
        if self.netns.is_none() {
            flags |= libc::CLONE_NEWNET;
        }
        if self.unprivileged.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        flags as u64
    }
}

fn open_wronly(path: &Path) -> Result<OwnedFd, SandboxError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| SandboxError::Os {
            what: "cgroup membership file",
            source,
        })
}

/// Clones the init from the calling process; `extra_flags` (e.g. `CLONE_PARENT` in the zygote)
/// are added to the namespaces. Returns the init's pid and pidfd.
pub(crate) fn start_init(
    launch: Launch,
    extra_flags: u64,
) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
    let flags = launch.clone_flags() | extra_flags;
    let procs = launch
        .cgroup_procs
        .iter()
        .map(|p| open_wronly(p))
        .collect::<Result<Vec<_>, _>>()?;
    let stdin = File::open("/dev/null").map_err(|source| SandboxError::Os {
        what: "stdin (/dev/null)",
        source,
    })?;
    let id_maps = launch.unprivileged.map(|(uid, gid)| IdMaps {
        uid_map: CString::new(format!("0 {uid} 1")).expect("no NUL in a number"),
        gid_map: CString::new(format!("0 {gid} 1")).expect("no NUL in a number"),
    });
    let prepared = Prepared::new(
        launch.spec,
        procs,
        launch.status_tx,
        stdin.into(),
        id_maps,
        launch.netns,
    )?;
    let mut pidfd: libc::c_int = -1;
    let mut args = sys::CloneArgs {
        flags,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        // With CLONE_PARENT the kernel takes the exit signal from the caller (and clone3 refuses
        // one here); the zygote was forked with SIGCHLD, so psy still gets SIGCHLD.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: fork-like clone; the child only runs `container_init`, which is
    // async-signal-safe and never returns.
    let pid = unsafe { sys::clone3(&mut args) };
    if pid == 0 {
        // SAFETY: we are the child of the clone above.
        unsafe { child::container_init(&prepared) }
    }
    if pid < 0 {
        return Err(SandboxError::os("namespaces (clone3)"));
    }
    drop(prepared); // closes our copies of the write end, stdio and cgroup files
                    // SAFETY: clone3 with CLONE_PIDFD stored a new owned fd here.
    Ok((pid as libc::pid_t, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}
