//! Building the hardened root in the container's init and entering it with `pivot_root`.
//!
//! Runs after `clone3` in the launcher's address space: raw syscalls on strings prepared by
//! `plan`, no allocation, no panics. Errors go to the status pipe as a [`SetupStep`].

pub(super) use crate::child::{attach, check_or_fail, fail};
use crate::error::SetupStep;
use crate::prepared::Prepared;
use crate::sys::{self, MountAttr};
use std::ffi::CStr;
use std::os::fd::RawFd;

use super::image_build::{clone_image, mount_image_root};
use super::plan::{OwnTrees, RootPlan};

pub(super) const CLONE_TREE: libc::c_uint = sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;

pub(super) unsafe fn mount(
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
pub(super) unsafe fn set_attrs(
    fd: RawFd,
    attrs: u64,
    userns: RawFd,
    recursive: bool,
) -> libc::c_int {
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

/// Volumes are mounted detached before the init leaves the host's mounts (in its slot's
/// template the host's `/dev/loop*` are out of sight); `Prepared` refuses more.
pub(crate) const MAX_PREMADE_VOLUMES: usize = crate::spec::MAX_VOLUMES;

/// Detached mounts the init attaches, made while it still sees the host's mounts.
pub(super) struct Trees {
    /// The scratch directory's clone or its disk's mount.
    scratch: RawFd,
    writable: [RawFd; crate::spec::MAX_WRITABLE],
    readonly: [RawFd; crate::spec::MAX_WRITABLE],
    project: RawFd,
    volumes: [RawFd; MAX_PREMADE_VOLUMES],
}

/// An ext4 filesystem on a loop device, detached, id-mapped.
unsafe fn mount_device(
    status: RawFd,
    device: &CStr,
    sync: bool,
    userns: RawFd,
    step: SetupStep,
) -> RawFd {
    let attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    let fd = check_or_fail(
        status,
        step,
        sys::mount_detached(c"ext4", device, sync, attrs),
    );
    check_or_fail(status, step, set_attrs(fd, attrs, userns, false));
    fd
}

/// Clones every host directory the container shows and mounts its disks, detached.
pub(super) unsafe fn make_trees(p: &Prepared, userns: RawFd, owner: u32, status: RawFd) -> Trees {
    let scratch = match &p.scratch_device {
        Some(device) => mount_device(
            status,
            device,
            p.sync_mounts,
            userns,
            SetupStep::MountScratchDisk,
        ),
        None => clone_writable(
            status,
            SetupStep::CloneScratch,
            &p.scratch_source,
            userns,
            owner,
        ),
    };
    let mut writable = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.writable.iter().zip(writable.iter_mut()) {
        *slot = clone_writable(status, SetupStep::MountWritable, source, userns, owner);
    }
    let mut readonly = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.readonly.iter().zip(readonly.iter_mut()) {
        *slot = clone_read_only(status, source, userns);
    }
    let project = match &p.project {
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
    let mut volumes = [-1; MAX_PREMADE_VOLUMES];
    for ((device, _), slot) in p.volumes.iter().zip(volumes.iter_mut()) {
        *slot = mount_device(
            status,
            device,
            p.sync_mounts,
            userns,
            SetupStep::MountVolume,
        );
    }
    Trees {
        scratch,
        writable,
        readonly,
        project,
        volumes,
    }
}

/// The host view at the stage: each host mount on its own (so no private tree comes along),
/// read-only, id-mapped over `userns` where the filesystem allows.
unsafe fn mount_host_view(plan: &RootPlan, userns: RawFd, status: RawFd) {
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
}

/// What every attempt gets of its own on top of the host view: `/tmp`, the project and
/// `readonly` directories, psy's state masked, `writable` directories, volumes and scratch.
pub(super) unsafe fn mount_attempt_trees(
    p: &Prepared,
    plan: &RootPlan,
    trees: &Trees,
    status: RawFd,
) {
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    check_or_fail(
        status,
        SetupStep::MountTmp,
        mount(
            c"tmpfs",
            &plan.own.tmp,
            c"tmpfs",
            nosuid_nodev,
            &p.tmpfs_options,
        ),
    );
    // Before the project and the masks: a read-only directory above psy's state directory
    // cannot uncover it, and the writable directories below land on top.
    for ((_, target), fd) in p.readonly.iter().zip(trees.readonly) {
        attach(status, fd, target, SetupStep::MountReadOnly);
    }
    if let Some(project) = &p.project {
        attach(
            status,
            trees.project,
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
    for ((_, target), fd) in p.writable.iter().zip(trees.writable) {
        attach(status, fd, target, SetupStep::MountWritable);
    }
    // `Prepared` refuses more volumes than were premade: a missing one fails the attach.
    for (i, (_, target)) in p.volumes.iter().enumerate() {
        let fd = trees.volumes.get(i).copied().unwrap_or(-1);
        attach(status, fd, target, SetupStep::MountVolume);
    }
    let scratch_step = match p.scratch_device {
        Some(_) => SetupStep::MountScratchDisk,
        None => SetupStep::MountScratch,
    };
    attach(status, trees.scratch, &p.scratch, scratch_step);
    if let Some(lost_found) = &p.scratch_lost_found {
        libc::rmdir(lost_found.as_ptr());
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
}

/// The kernel trees of the container's own namespaces: devpts, `/dev/shm`, `/run`, `/proc` of
/// its PID namespace, `/sys` of its network namespace (joined before).
pub(super) unsafe fn mount_own_trees(p: &Prepared, plan: &RootPlan, status: RawFd) {
    check_or_fail(
        status,
        SetupStep::MountDev,
        mount(
            c"devpts",
            &plan.own.dev_pts,
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
            &plan.own.dev_shm,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            &p.tmpfs_options,
        ),
    );
    if plan.has_run {
        check_or_fail(
            status,
            SetupStep::MountRun,
            mount(
                c"tmpfs",
                &plan.own.run,
                c"tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"size=1m,mode=755",
            ),
        );
    }
    make_proc(plan, status);
    make_sys(plan, status);
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
    // Trees that the stage will cover (the scratch area and a project under /tmp) are cloned first.
    let trees = make_trees(p, userns, owner, status);
    match &plan.image {
        Some(image) => {
            let image_trees = clone_image(image, userns, status);
            mount_image_root(image, &image_trees, status);
        }
        None => mount_host_view(plan, userns, status),
    }
    if let Some(synthetic) = &plan.synthetic {
        super::synthetic::build(synthetic, &plan.own.root, &plan.own.tmp, false, status);
    }
    mount_attempt_trees(p, plan, &trees, status);
    make_dev(&plan.own, plan.rootless, status);
    mount_own_trees(p, plan, status);
    pivot(&plan.own.root, status);
}

/// Enters the slot's template root (`template.rs`: the host view and `/dev`, built once) as a
/// copy of its own, and adds what is the attempt's: the same root as [`build_and_enter`] makes,
/// without building the shared part again, `pivot_root` or unmounting the host's root.
pub(crate) unsafe fn enter_template(
    p: &Prepared,
    plan: &RootPlan,
    template: RawFd,
    userns: RawFd,
    owner: u32,
    status: RawFd,
) {
    // While the host's mounts are still in sight (the template shows none of its /dev/loop*).
    let trees = make_trees(p, userns, owner, status);
    copy_template(template, status);
    if let Some(synthetic) = &plan.synthetic {
        super::synthetic::build(synthetic, &plan.own.root, &plan.own.tmp, true, status);
    }
    mount_attempt_trees(p, plan, &trees, status);
    mount_own_trees(p, plan, status);
}

/// Joins the mount namespace `template` and makes a copy of it the init's own: what this attempt
/// mounts stays its own.
pub(super) unsafe fn copy_template(template: RawFd, status: RawFd) {
    check_or_fail(
        status,
        SetupStep::PivotRoot,
        libc::setns(template, libc::CLONE_NEWNS),
    );
    check_or_fail(
        status,
        SetupStep::PrivateMounts,
        libc::unshare(libc::CLONE_NEWNS),
    );
}

/// Builds a template root in the calling process's own new mount namespace and enters it:
/// the host view and `/dev` of [`build_and_enter`], none of an attempt's trees.
pub(crate) unsafe fn build_template(plan: &RootPlan, userns: RawFd, status: RawFd) {
    check_or_fail(
        status,
        SetupStep::PrivateMounts,
        mount(c"none", c"/", c"", libc::MS_REC | libc::MS_PRIVATE, c""),
    );
    mount_host_view(plan, userns, status);
    make_dev(&plan.own, plan.rootless, status);
    pivot(&plan.own.root, status);
}

/// A minimal `/dev` in the stage: the usual character devices, read-only, with the mount points
/// of the container's own devpts and `/dev/shm` (`mount_own_trees`).
pub(super) unsafe fn make_dev(own: &OwnTrees, rootless: bool, status: RawFd) {
    let step = SetupStep::MountDev;
    check_or_fail(
        status,
        step,
        mount(
            c"tmpfs",
            &own.dev,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"size=64k,mode=755",
        ),
    );
    // mknod honours the umask: nodes must be 0666 whoever opens them.
    let umask = libc::umask(0);
    for (node, host, major, minor) in &own.dev_nodes {
        if !rootless {
            check_or_fail(
                status,
                step,
                libc::mknod(
                    node.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(*major, *minor),
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
    for (link, to) in &own.dev_links {
        check_or_fail(status, step, libc::symlink(to.as_ptr(), link.as_ptr()));
    }
    for dir in [&own.dev_pts, &own.dev_shm] {
        check_or_fail(status, step, libc::mkdir(dir.as_ptr(), 0o755));
    }
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    check_or_fail(
        status,
        step,
        sys::mount_setattr(libc::AT_FDCWD, &own.dev, 0, &rdonly),
    );
}

/// `/proc` of the container's PID namespace, with runc's masked and read-only paths.
unsafe fn make_proc(plan: &RootPlan, status: RawFd) {
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    check_or_fail(
        status,
        SetupStep::MountProc,
        mount(c"proc", &plan.own.proc, c"proc", hidden, c""),
    );
    for file in &plan.masked_files {
        check_or_fail(
            status,
            SetupStep::MaskPath,
            mount(&plan.own.dev_null, file, c"", libc::MS_BIND, c""),
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
        mount(c"sysfs", &plan.own.sys, c"sysfs", hidden, c""),
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

/// `pivot_root` into the stage `root` and detach the host's root, as runc does.
pub(super) unsafe fn pivot(root: &CStr, status: RawFd) {
    let step = SetupStep::PivotRoot;
    let old_root = check_or_fail(
        status,
        step,
        libc::open(
            c"/".as_ptr(),
            libc::O_DIRECTORY | libc::O_PATH | libc::O_CLOEXEC,
        ),
    );
    check_or_fail(status, step, libc::chdir(root.as_ptr()));
    check_or_fail(status, step, sys::pivot_root(c".", c"."));
    // The host's root now lies over the new one: detach it (and everything below it).
    check_or_fail(status, step, libc::fchdir(old_root));
    check_or_fail(status, step, libc::umount2(c".".as_ptr(), libc::MNT_DETACH));
    libc::close(old_root);
    check_or_fail(status, step, libc::chdir(c"/".as_ptr()));
}
