//! The hardened container's root filesystem: a new mount tree, entered with `pivot_root`, in
//! which no host mount lies under a container mount.
//!
//! The tree is the host's mounts (read-only, id-mapped to the slot's user namespace where the
//! filesystem allows) minus the host's `/proc`, `/sys`, `/dev`, `/run` and `/tmp`, plus the
//! container's own: a private `/tmp`, a minimal `/dev`, an empty `/run`, a `/proc` of its PID
//! namespace with runc's masked and read-only paths, a read-only `/sys`, psy's state directory
//! masked, and the test's scratch area and volumes. `plan` computes every path in psy (it may
//! allocate); `build` runs in the container's init after `clone3` (raw syscalls only); as root,
//! `template` builds the part shared by a slot's attempts once, and each init copies it.

pub(crate) mod build;
pub(crate) mod image;
pub(crate) mod image_build;
pub(crate) mod overlay_pool;
mod overlay_worker;
pub(crate) mod plan;
pub(crate) mod synthetic;
pub(crate) mod template;

pub(crate) use plan::{HostView, RootPlan};

/// Where the init assembles the new root before `pivot_root`: the init's own view of `/tmp`
/// (never the host's, which the init's mount namespace only shadows). An init that stands in
/// its slot's template root (`template.rs`) mounts in place, at `/`.
pub(crate) const STAGE: &str = "/tmp";
