//! Starting a container's init: everything between "here is a spec" and "here is its pid".
//! Runs in psy itself or, normally, in the zygote (see `zygote.rs`).

use crate::child;
use crate::confine::Confinement;
use crate::error::SandboxError;
use crate::prepared::{self, HardenedInput, IdMaps, Prepared};
use crate::rootfs::{self, template, HostView};
use crate::seccomp::Allowances;
use crate::spec::ContainerSpec;
use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A pidfd of the psy process: a new init checks it right after `PR_SET_PDEATHSIG`, so an init
/// cloned just as psy died does not outlive it (the death signal only covers deaths after it
/// was set, and `getppid` says nothing inside a new PID namespace).
static PSY_PIDFD: OnceLock<Option<OwnedFd>> = OnceLock::new();

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    // SAFETY: as above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Records which process is psy (the zygote calls this with its parent's pid).
pub(crate) fn set_psy_pid(pid: libc::pid_t) {
    let _ = PSY_PIDFD.set(pidfd_open(pid));
}

fn psy_pidfd() -> RawFd {
    // SAFETY: getpid has no preconditions.
    PSY_PIDFD
        .get_or_init(|| pidfd_open(unsafe { libc::getpid() }))
        .as_ref()
        .map_or(-1, |fd| fd.as_raw_fd())
}

/// What it takes to start one container's init.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) spec: ContainerSpec,
    /// `argv[0]` resolved against the test's `PATH` and `cwd`.
    pub(crate) exe: PathBuf,
    /// `cgroup.procs` files the init joins.
    pub(crate) cgroup_procs: Vec<PathBuf>,
    /// Write end of the status pipe.
    pub(crate) status_tx: OwnedFd,
    /// A ready network namespace, or `None` for a new one.
    pub(crate) netns: Option<OwnedFd>,
    /// `(uid, gid)` to map in a new user namespace (unprivileged mode).
    pub(crate) unprivileged: Option<(u32, u32)>,
    /// A loop device to mount over the scratch directory instead of binding it.
    pub(crate) scratch_device: Option<PathBuf>,
    /// Mount the scratch disk `sync`: every write is issued by the writer (see `prepare`).
    pub(crate) sync_mounts: bool,
    /// `(loop device, path inside the container)` of each volume.
    pub(crate) volume_devices: Vec<(PathBuf, PathBuf)>,
    /// How the test is confined; with anything but `Privileged` the container gets its own root.
    pub(crate) confinement: Confinement,
    /// The host's mounts and masked paths (hardened containers).
    pub(crate) view: Option<HostView>,
    /// Directories hidden from the test (psy's state directory).
    pub(crate) masks: Vec<PathBuf>,
    /// The slot's user namespace and the host id its root maps to (`SlotUserns`).
    pub(crate) userns: Option<(OwnedFd, u32)>,
    /// Calls the seccomp filter lets through beyond the default.
    pub(crate) allow: Allowances,
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
    let mut flags = launch.clone_flags() | extra_flags;
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
    // A ready overlay for an image root built in the image template (its `/etc` files are
    // then written through it: its writable layer is the pool's).
    let pooled = match (&launch.spec.image, &launch.view, launch.confinement) {
        (Some(image), Some(_), Confinement::SlotUserns | Confinement::DockerCaps)
            if template::image_template().is_some() =>
        {
            let userns = launch.userns.as_ref().map(|(fd, id)| (fd.as_raw_fd(), *id));
            rootfs::overlay_pool::take(image, userns)
        }
        _ => None,
    };
    if let Some(image) = &launch.spec.image {
        // The image's user owns its scratch area (as the files of the id-mapped scratch mount
        // show it: on-disk ids are container ids).
        if let (Some((uid, gid)), false) = (image.user, launch.unprivileged.is_some()) {
            std::os::unix::fs::chown(&launch.spec.scratch_dir, Some(uid), Some(gid)).map_err(
                |e| SandboxError::Image {
                    reason: format!(
                        "giving {} to the image's user {uid}:{gid}: {e}",
                        launch.spec.scratch_dir.display()
                    ),
                },
            )?;
        }
        let owner = launch.userns.as_ref().map(|(_, id)| *id);
        let (hostname, hosts) = (&launch.spec.hostname, launch.spec.hosts_file.as_deref());
        match &pooled {
            Some(taken) => rootfs::image::write_etc_in(taken.fd(), hostname, hosts, owner),
            None => rootfs::image::write_etc(image, hostname, hosts, owner),
        }
        .map_err(|e| SandboxError::Image {
            reason: format!("writing {}/etc: {e}", image.upper_dir.display()),
        })?;
    }
    let launch_device = launch.scratch_device.clone();
    let launch_sync = launch.sync_mounts;
    let volume_devices = launch.volume_devices.clone();
    let hardened = match (&launch.view, launch.confinement) {
        (Some(view), confinement) if confinement != Confinement::Privileged => {
            // A rootless init is in a user namespace of its own and cannot join a template; an
            // image's root is built in a copy of the image template.
            let template = match confinement {
                Confinement::NestedUserns => None,
                _ if launch.spec.image.is_some() => template::image_template(),
                _ => template::template_for(
                    view,
                    launch.userns.as_ref().map(|(fd, id)| (fd.as_raw_fd(), *id)),
                ),
            };
            if template.is_some() {
                // The init copies the template's mount namespace instead of the launcher's.
                flags &= !(libc::CLONE_NEWNS as u64);
            }
            Some(HardenedInput {
                view,
                masks: &launch.masks,
                confinement,
                userns: launch.userns,
                allow: launch.allow,
                template,
            })
        }
        _ => None,
    };
    let (prepared, owned) = Prepared::new(
        launch.spec,
        &launch.exe,
        procs,
        launch.status_tx,
        stdin.into(),
        id_maps,
        launch.netns,
        hardened,
    )?;
    // Boxed: with a shared address space the init reads it at this address until it exits.
    let mut prepared = Box::new(prepared);
    prepared.psy_pidfd = psy_pidfd();
    if let (Some(taken), Some(h)) = (&pooled, prepared.hardened.as_mut()) {
        if let Some(image) = h.root.image.as_mut() {
            image.overlay = taken.fd();
        }
    }
    for ((device, _), (slot, _)) in volume_devices.iter().zip(prepared.volumes.iter_mut()) {
        *slot = prepared::cstring("volume", device)?;
    }
    if let Some(device) = &launch_device {
        prepared.scratch_device = Some(prepared::cstring("scratch disk", device)?);
        prepared.sync_mounts = launch_sync;
        // Where the disk is mounted in the init's view (inside the stage when hardened).
        let mounted_at = std::ffi::OsStr::from_bytes(prepared.scratch.path.as_bytes());
        prepared.scratch_lost_found = Some(prepared::cstring(
            "scratch disk",
            Path::new(mounted_at).join("lost+found"),
        )?);
    }
    let started = if flags & libc::CLONE_NEWUSER as u64 != 0 {
        fork_init(prepared, flags)
    } else {
        crate::shared_init::start(prepared, flags)
    };
    drop(owned); // our copies of the status pipe's write end, stdio and cgroup files
    if let Some(taken) = pooled {
        rootfs::overlay_pool::release(taken, started.as_ref().ok().map(|(_, fd)| fd.as_raw_fd()));
    }
    started
}

/// Clones the init as a copy of the caller (fork-like `clone3`): with a user namespace, whose
/// init must not share the caller's memory.
fn fork_init(prepared: Box<Prepared>, flags: u64) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
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
    drop(prepared);
    // SAFETY: clone3 with CLONE_PIDFD stored a new owned fd here.
    Ok((pid as libc::pid_t, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}
