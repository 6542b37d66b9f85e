//! Building the hardened root in the container's init and entering it with `pivot_root`.
//!
//! Runs after `clone3` in the launcher's address space: raw syscalls on strings prepared by
//! `plan`, no allocation, no panics. Errors go to the status pipe as a [`SetupStep`].

use crate::child::{attach, check_or_fail, fail};
use crate::error::SetupStep;
use crate::prepared::{BindTarget, Prepared};
use crate::sys::{self, MountAttr};
use std::ffi::CStr;
use std::os::fd::RawFd;

use super::plan::RootPlan;

const CLONE_TREE: libc::c_uint = sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;

unsafe fn mount(
    src: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: &CStr,
) -> libc::c_int {
    libc::mount(
        src.as_ptr(),
        target.as_ptr(),
        fstype.as_ptr(),
        flags,
        data.as_ptr().cast(),
    )
}

/// Sets `attrs` and an id mapping over `userns` on a detached mount; false where the
/// filesystem (or kernel) cannot id-map it, or there is no `userns` (-1).
unsafe fn try_idmap(fd: RawFd, attrs: u64, userns: RawFd, flags: libc::c_uint) -> bool {
    let mapped = MountAttr {
        attr_set: attrs | sys::MOUNT_ATTR_IDMAP,
        userns_fd: userns as u64,
        ..MountAttr::default()
    };
    userns >= 0 && sys::mount_setattr(fd, c"", flags, &mapped) == 0
}

/// Sets `attrs` on a detached mount `fd` (recursively with `recursive`), id-mapped over
/// `userns` where the filesystem allows it: a filesystem that cannot be id-mapped keeps its
/// ids (container root then reads it as "others").
unsafe fn set_attrs(fd: RawFd, attrs: u64, userns: RawFd, recursive: bool) -> libc::c_int {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= sys::AT_RECURSIVE;
    }
    if try_idmap(fd, attrs, userns, flags) {
        return 0;
    }
    let plain = MountAttr {
        attr_set: attrs,
        ..MountAttr::default()
    };
    sys::mount_setattr(fd, c"", flags, &plain)
}

/// A detached clone of `source`, a directory the test writes (`nosuid`, `nodev`), id-mapped;
/// where the filesystem cannot be id-mapped (9p, overlayfs before Linux 6.3, ...), its top
/// directory is given to the slot's root (`owner`, a host uid; 0 for none) instead, so container
/// root can still write there.
unsafe fn clone_writable(
    status: RawFd,
    step: SetupStep,
    source: &CStr,
    userns: RawFd,
    owner: u32,
) -> RawFd {
    let fd = check_or_fail(status, step, sys::open_tree(source, CLONE_TREE));
    let attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    let flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if !try_idmap(fd, attrs, userns, flags) {
        if userns >= 0 && owner != 0 {
            check_or_fail(
                status,
                step,
                libc::fchownat(fd, c"".as_ptr(), owner, owner, libc::AT_EMPTY_PATH),
            );
        }
        check_or_fail(status, step, set_attrs(fd, attrs, -1, false));
    }
    fd
}

/// A detached clone of `source` (its own mount only, none below it), read-only, `nosuid`,
/// `nodev`, id-mapped where the filesystem allows it.
unsafe fn clone_read_only(status: RawFd, source: &CStr, userns: RawFd) -> RawFd {
    let step = SetupStep::MountReadOnly;
    let fd = check_or_fail(status, step, sys::open_tree(source, CLONE_TREE));
    let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    check_or_fail(status, step, set_attrs(fd, attrs, userns, false));
    fd
}

/// An ext4 filesystem on a loop device, id-mapped, attached at `target`.
unsafe fn attach_device(
    status: RawFd,
    device: &CStr,
    target: &BindTarget,
    sync: bool,
    userns: RawFd,
    step: SetupStep,
) {
    let attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    let fd = check_or_fail(
        status,
        step,
        sys::mount_detached(c"ext4", device, sync, attrs),
    );
    check_or_fail(status, step, set_attrs(fd, attrs, userns, false));
    attach(status, fd, target, step);
}

/// Builds the new root in the stage and enters it. `userns` (-1 for none) id-maps the host
/// view, scratch and volumes; `tmp_options` are the private `/tmp`'s and `/dev/shm`'s.
pub(crate) unsafe fn build_and_enter(
    p: &Prepared,
    plan: &RootPlan,
    userns: RawFd,
    owner: u32,
    status: RawFd,
) {
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    // Trees that the stage will cover (the scratch area and a project under /tmp) are cloned first.
    let scratch_tree = match p.scratch_device {
        Some(_) => -1,
        None => clone_writable(
            status,
            SetupStep::CloneScratch,
            &p.scratch_source,
            userns,
            owner,
        ),
    };
    // `writable` directories, cloned before anything covers them (at most MAX_WRITABLE).
    let mut writable_trees = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.writable.iter().zip(writable_trees.iter_mut()) {
        *slot = clone_writable(status, SetupStep::MountWritable, source, userns, owner);
    }
    // `readonly` directories (a target directory under /tmp), likewise cloned first.
    let mut readonly_trees = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.readonly.iter().zip(readonly_trees.iter_mut()) {
        *slot = clone_read_only(status, source, userns);
    }
    let project_tree = match &p.project {
        Some(project) => {
            let fd = check_or_fail(
                status,
                SetupStep::CloneProject,
                sys::open_tree(&project.source, CLONE_TREE | sys::AT_RECURSIVE),
            );
            let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV;
            check_or_fail(
                status,
                SetupStep::ReadOnlyProject,
                set_attrs(fd, attrs, userns, true),
            );
            fd
        }
        None => -1,
    };

    // The host view: each host mount on its own (so no private tree comes along), read-only.
    let (clone_flags, recursive) = match plan.rootless {
        true => (CLONE_TREE | sys::AT_RECURSIVE, true),
        false => (CLONE_TREE, false),
    };
    for (i, (source, target)) in plan.host_mounts.iter().enumerate() {
        let fd = sys::open_tree(source, clone_flags);
        let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV;
        let attached = fd >= 0
            && set_attrs(fd, attrs, userns, recursive) == 0
            && sys::move_mount_to(fd, target) == 0;
        if fd >= 0 {
            libc::close(fd);
        }
        // A mount hidden under another one on the host cannot be reproduced: skipped. The
        // root itself must be there.
        if !attached && i == 0 {
            fail(status, SetupStep::HostView);
        }
    }

    check_or_fail(
        status,
        SetupStep::MountTmp,
        mount(
            c"tmpfs",
            c"/tmp/tmp",
            c"tmpfs",
            nosuid_nodev,
            &p.tmpfs_options,
        ),
    );
    // Before the project and the masks: a read-only directory above psy's state directory
    // cannot uncover it, and the writable directories below land on top.
    for ((_, target), fd) in p.readonly.iter().zip(readonly_trees) {
        attach(status, fd, target, SetupStep::MountReadOnly);
    }
    if let Some(project) = &p.project {
        attach(
            status,
            project_tree,
            &project.target,
            SetupStep::MountProject,
        );
    }
    for mask in &plan.masks {
        check_or_fail(
            status,
            SetupStep::MaskPath,
            mount(
                c"tmpfs",
                mask,
                c"tmpfs",
                nosuid_nodev | libc::MS_NOEXEC,
                c"size=16k,mode=755",
            ),
        );
    }
    for ((_, target), fd) in p.writable.iter().zip(writable_trees) {
        attach(status, fd, target, SetupStep::MountWritable);
    }
    for (device, target) in &p.volumes {
        attach_device(
            status,
            device,
            target,
            p.sync_mounts,
            userns,
            SetupStep::MountVolume,
        );
    }
    match &p.scratch_device {
        Some(device) => {
            attach_device(
                status,
                device,
                &p.scratch,
                p.sync_mounts,
                userns,
                SetupStep::MountScratchDisk,
            );
            if let Some(lost_found) = &p.scratch_lost_found {
                libc::rmdir(lost_found.as_ptr());
            }
        }
        None => attach(status, scratch_tree, &p.scratch, SetupStep::MountScratch),
    }
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    for mask in &plan.masks {
        check_or_fail(
            status,
            SetupStep::MaskPath,
            sys::mount_setattr(libc::AT_FDCWD, mask, 0, &rdonly),
        );
    }

    make_dev(p, plan, status);
    if plan.has_run {
        check_or_fail(
            status,
            SetupStep::MountRun,
            mount(
                c"tmpfs",
                c"/tmp/run",
                c"tmpfs",
                nosuid_nodev | libc::MS_NOEXEC,
                c"size=1m,mode=755",
            ),
        );
    }
    make_proc(plan, status);
    make_sys(plan, status);
    pivot(status);
}

/// A minimal `/dev`: the usual character devices, a private devpts and `/dev/shm`, read-only.
unsafe fn make_dev(p: &Prepared, plan: &RootPlan, status: RawFd) {
    let step = SetupStep::MountDev;
    check_or_fail(
        status,
        step,
        mount(
            c"tmpfs",
            c"/tmp/dev",
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"size=64k,mode=755",
        ),
    );
    let nodes: [(&CStr, &CStr, u32, u32); 6] = [
        (c"/tmp/dev/null", c"/dev/null", 1, 3),
        (c"/tmp/dev/zero", c"/dev/zero", 1, 5),
        (c"/tmp/dev/full", c"/dev/full", 1, 7),
        (c"/tmp/dev/random", c"/dev/random", 1, 8),
        (c"/tmp/dev/urandom", c"/dev/urandom", 1, 9),
        (c"/tmp/dev/tty", c"/dev/tty", 5, 0),
    ];
    // mknod honours the umask: nodes must be 0666 whoever opens them.
    let umask = libc::umask(0);
    for (node, host, major, minor) in nodes {
        if !plan.rootless {
            check_or_fail(
                status,
                step,
                libc::mknod(
                    node.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(major, minor),
                ),
            );
        } else {
            // Without root a device node cannot be made: the host's is bound instead.
            let fd = check_or_fail(
                status,
                step,
                libc::open(
                    node.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o666,
                ),
            );
            libc::close(fd);
            check_or_fail(status, step, mount(host, node, c"", libc::MS_BIND, c""));
        }
    }
    libc::umask(umask);
    for (link, to) in [
        (c"/tmp/dev/fd", c"/proc/self/fd"),
        (c"/tmp/dev/stdin", c"/proc/self/fd/0"),
        (c"/tmp/dev/stdout", c"/proc/self/fd/1"),
        (c"/tmp/dev/stderr", c"/proc/self/fd/2"),
        (c"/tmp/dev/ptmx", c"pts/ptmx"),
    ] {
        check_or_fail(status, step, libc::symlink(to.as_ptr(), link.as_ptr()));
    }
    for dir in [c"/tmp/dev/pts", c"/tmp/dev/shm"] {
        check_or_fail(status, step, libc::mkdir(dir.as_ptr(), 0o755));
    }
    check_or_fail(
        status,
        step,
        mount(
            c"devpts",
            c"/tmp/dev/pts",
            c"devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"newinstance,ptmxmode=0666,mode=0620",
        ),
    );
    check_or_fail(
        status,
        SetupStep::MountShm,
        mount(
            c"tmpfs",
            c"/tmp/dev/shm",
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            &p.tmpfs_options,
        ),
    );
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    check_or_fail(
        status,
        step,
        sys::mount_setattr(libc::AT_FDCWD, c"/tmp/dev", 0, &rdonly),
    );
}

/// `/proc` of the container's PID namespace, with runc's masked and read-only paths.
unsafe fn make_proc(plan: &RootPlan, status: RawFd) {
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    check_or_fail(
        status,
        SetupStep::MountProc,
        mount(c"proc", c"/tmp/proc", c"proc", hidden, c""),
    );
    for file in &plan.masked_files {
        check_or_fail(
            status,
            SetupStep::MaskPath,
            mount(c"/tmp/dev/null", file, c"", libc::MS_BIND, c""),
        );
    }
    for path in &plan.read_only {
        check_or_fail(
            status,
            SetupStep::ReadOnlyProcSys,
            mount(path, path, c"", libc::MS_BIND | libc::MS_REC, c""),
        );
        check_or_fail(
            status,
            SetupStep::ReadOnlyProcSys,
            mount(
                c"",
                path,
                c"",
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | hidden,
                c"",
            ),
        );
    }
}

/// A read-only `/sys` of the container's network namespace.
unsafe fn make_sys(plan: &RootPlan, status: RawFd) {
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
    check_or_fail(
        status,
        SetupStep::MountSys,
        mount(c"sysfs", c"/tmp/sys", c"sysfs", hidden, c""),
    );
    // On cgroup v2 the test mounts its own cgroup at /sys/fs/cgroup (`child::exec_test`): only
    // it joins the cgroup and its namespace.
    // Masked directories of /proc and /sys: an empty read-only tmpfs each.
    for dir in &plan.masked_dirs {
        check_or_fail(
            status,
            SetupStep::MaskPath,
            mount(c"tmpfs", dir, c"tmpfs", hidden, c"size=4k"),
        );
    }
}

/// `pivot_root` into the stage and detach the host's root, as runc does.
unsafe fn pivot(status: RawFd) {
    let step = SetupStep::PivotRoot;
    let old_root = check_or_fail(
        status,
        step,
        libc::open(
            c"/".as_ptr(),
            libc::O_DIRECTORY | libc::O_PATH | libc::O_CLOEXEC,
        ),
    );
    check_or_fail(status, step, libc::chdir(c"/tmp".as_ptr()));
    check_or_fail(status, step, sys::pivot_root(c".", c"."));
    // The host's root now lies over the new one: detach it (and everything below it).
    check_or_fail(status, step, libc::fchdir(old_root));
    check_or_fail(status, step, libc::umount2(c".".as_ptr(), libc::MNT_DETACH));
    libc::close(old_root);
    check_or_fail(status, step, libc::chdir(c"/".as_ptr()));
}
