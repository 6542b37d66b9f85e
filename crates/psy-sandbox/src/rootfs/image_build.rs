//! Building an image's root in the container's init (see `image.rs` for the plan): the layers'
//! clones under overlayfs, in the init's own mount namespace (rootless) or in a copy of the
//! image template, which is built here too. Raw syscalls only, as in `build.rs`.

use super::build::{
    check_or_fail, copy_template, fail, make_dev, make_trees, mount, mount_attempt_trees,
    mount_own_trees, pivot, set_attrs, CLONE_TREE,
};
use super::image::ImagePlan;
use super::plan::{OwnTrees, RootPlan};
use crate::error::SetupStep;
use crate::prepared::Prepared;
use crate::sys::{self, MountAttr};
use std::ffi::CStr;
use std::os::fd::RawFd;

/// Detached clones of an image's layers (read-only, id-mapped where the filesystem allows) and,
/// for a root built in the image template, of the attempt's writable directory, made while the
/// init still sees the host. Unused entries are -1.
pub(super) struct ImageTrees {
    layers: [RawFd; crate::spec::MAX_LAYERS],
    writable: RawFd,
}

pub(super) unsafe fn clone_image(image: &ImagePlan, userns: RawFd, status: RawFd) -> ImageTrees {
    let step = SetupStep::ImageRoot;
    let mut layers = [-1; crate::spec::MAX_LAYERS];
    for ((source, _), slot) in image.layers.iter().zip(layers.iter_mut()) {
        let fd = check_or_fail(status, step, sys::open_tree(source, CLONE_TREE));
        let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV;
        check_or_fail(status, step, set_attrs(fd, attrs, userns, false));
        *slot = fd;
    }
    let writable = match &image.writable {
        // overlayfs refuses an id-mapped writable layer: its files are given to the slot's root.
        Some((source, _)) => {
            let fd = check_or_fail(status, step, sys::open_tree(source, CLONE_TREE));
            let attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
            check_or_fail(status, step, set_attrs(fd, attrs, -1, false));
            fd
        }
        None => -1,
    };
    ImageTrees { layers, writable }
}

/// An image's root at its stage: each layer's clone attached at a short mount point on a
/// tmpfs of the init's own, overlayfs on top with the attempt's writable layer, and the mount
/// points of the container's own trees (see `image.rs`).
pub(super) unsafe fn mount_image_root(image: &ImagePlan, trees: &ImageTrees, status: RawFd) {
    let step = SetupStep::ImageRoot;
    check_or_fail(
        status,
        step,
        mount(
            c"tmpfs",
            &image.layers_at,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=64k,mode=700",
        ),
    );
    if image.overlay >= 0 {
        // Made ahead by the pool: attached, not made.
        check_or_fail(status, step, libc::mkdir(image.root.as_ptr(), 0o755));
        check_or_fail(status, step, sys::move_mount_to(image.overlay, &image.root));
        libc::close(image.overlay);
    } else {
        mount_layers_and_overlay(image, trees, status);
    }
    for dir in &image.mountpoints {
        if libc::mkdir(dir.as_ptr(), 0o755) < 0 && !crate::child::is_dir(dir) {
            fail(status, SetupStep::MkdirMountpoint);
        }
    }
}

/// The layers' clones at their mount points, and overlayfs over them at the stage.
unsafe fn mount_layers_and_overlay(image: &ImagePlan, trees: &ImageTrees, status: RawFd) {
    let step = SetupStep::ImageRoot;
    for ((_, target), fd) in image.layers.iter().zip(trees.layers) {
        check_or_fail(status, step, libc::mkdir(target.as_ptr(), 0o700));
        check_or_fail(status, step, sys::move_mount_to(fd, target));
        libc::close(fd);
    }
    if let Some((_, target)) = &image.writable {
        check_or_fail(status, step, libc::mkdir(target.as_ptr(), 0o700));
        check_or_fail(status, step, sys::move_mount_to(trees.writable, target));
        libc::close(trees.writable);
    }
    check_or_fail(status, step, libc::mkdir(image.root.as_ptr(), 0o755));
    check_or_fail(
        status,
        step,
        mount(
            c"overlay",
            &image.root,
            c"overlay",
            libc::MS_NODEV,
            &image.overlay_options,
        ),
    );
}

/// Builds an image's root in a copy of the image template (`template.rs`) and enters it: the
/// root [`build_and_enter`] makes for an image, without copying or unmounting the host's mounts.
pub(crate) unsafe fn enter_image_template(
    p: &Prepared,
    plan: &RootPlan,
    template: RawFd,
    userns: RawFd,
    owner: u32,
    status: RawFd,
) {
    let Some(image) = &plan.image else {
        fail(status, SetupStep::ImageRoot);
    };
    // While the host's mounts are still in sight.
    let trees = make_trees(p, userns, owner, status);
    let image_trees = match image.overlay {
        // A ready overlay from the pool holds its layers already.
        fd if fd >= 0 => ImageTrees {
            layers: [-1; crate::spec::MAX_LAYERS],
            writable: -1,
        },
        _ => clone_image(image, userns, status),
    };
    copy_template(template, status);
    mount_image_root(image, &image_trees, status);
    mount_attempt_trees(p, plan, &trees, status);
    // The template's `/dev`, made once (no mount below it: devpts and `/dev/shm` are the
    // attempt's own, mounted next).
    check_or_fail(
        status,
        SetupStep::MountDev,
        mount(c"/dev", &plan.own.dev, c"", libc::MS_BIND, c""),
    );
    mount_own_trees(p, plan, status);
    enter_by_move(&plan.own.root, status);
}

/// Builds the image template in the calling process's own new mount namespace and enters it:
/// a read-only tmpfs with the minimal `/dev` (`own`: its paths at the stage `/tmp`) and the
/// directory an attempt mounts its layers' tmpfs on.
pub(crate) unsafe fn build_image_template(own: &OwnTrees, status: RawFd) {
    check_or_fail(
        status,
        SetupStep::PrivateMounts,
        mount(c"none", c"/", c"", libc::MS_REC | libc::MS_PRIVATE, c""),
    );
    let step = SetupStep::ImageRoot;
    check_or_fail(
        status,
        step,
        mount(
            c"tmpfs",
            &own.root,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=16k,mode=755",
        ),
    );
    check_or_fail(status, step, libc::mkdir(c"/tmp/w".as_ptr(), 0o700));
    check_or_fail(status, step, libc::mkdir(own.dev.as_ptr(), 0o755));
    make_dev(own, false, status);
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    check_or_fail(
        status,
        step,
        sys::mount_setattr(libc::AT_FDCWD, &own.root, 0, &rdonly),
    );
    pivot(&own.root, status);
}

/// Enters the stage `root` by moving it over `/` and `chroot`ing there, as runc does without
/// `pivot_root`: in a copy of the image template there is nothing below worth unmounting.
unsafe fn enter_by_move(root: &CStr, status: RawFd) {
    let step = SetupStep::PivotRoot;
    check_or_fail(status, step, libc::chdir(root.as_ptr()));
    check_or_fail(status, step, mount(c".", c"/", c"", libc::MS_MOVE, c""));
    check_or_fail(status, step, libc::chroot(c".".as_ptr()));
    check_or_fail(status, step, libc::chdir(c"/".as_ptr()));
}
