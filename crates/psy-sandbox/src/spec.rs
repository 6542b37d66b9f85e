//! What one container should look like: the command, its environment and its filesystem view.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::PathBuf;

/// A root filesystem from an image: its layers, read-only, under a writable layer of this
/// attempt (overlayfs), instead of the host's root. See `rootfs/image.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRoot {
    /// Unpacked layer directories, bottom first (overlayfs lower directories; at most
    /// [`MAX_LAYERS`]).
    pub layers: Vec<PathBuf>,
    /// This attempt's writable layer: an empty directory (overlayfs' upper directory), and
    /// an empty work directory on the same filesystem. Both are the caller's to remove after
    /// the attempt. psy writes `etc/hostname`, `etc/hosts` and `etc/resolv.conf` there.
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    /// The layers were unpacked without root: their whiteouts and opaque directories are
    /// `user.overlay.*` extended attributes (overlayfs' `userxattr` option).
    pub user_xattrs: bool,
    /// `(uid, gid)` inside the container the test runs as (the image's `User`); `None`: root.
    /// Rootless, the test stays root (its user namespace maps only one id).
    #[serde(default)]
    pub user: Option<(u32, u32)>,
    /// Where the project directory appears inside the image (absolute); `None`: at its host
    /// path. psy's state directory inside it stays masked there.
    #[serde(default)]
    pub project_path: Option<PathBuf>,
}

/// How many layers an image root may have (overlayfs takes up to 500; the mount options
/// must fit in a page).
pub const MAX_LAYERS: usize = 128;

/// One attempt's container, fully described by the caller (the runner).
#[derive(Debug)]
pub struct ContainerSpec {
    /// argv; `argv[0]` is resolved against `PATH` from `env` (or relative to `cwd` if it has a `/`).
    pub argv: Vec<String>,
    /// The complete environment of the test process.
    pub env: Vec<(String, String)>,
    /// Working directory (absolute, must exist).
    pub cwd: PathBuf,
    /// The UTS hostname.
    pub hostname: String,
    /// Size of the private `/tmp` (and `/dev/shm`) tmpfs.
    pub tmp_bytes: u64,
    /// Host directory mounted writable at the same path (`$PSY_SCRATCH`); must exist.
    pub scratch_dir: PathBuf,
    /// Size limit of the scratch area: `Some` gives it a filesystem of its own of that size
    /// (writing past it fails with ENOSPC); `None` binds the host directory as it is.
    pub scratch_bytes: Option<u64>,
    /// Formatted images (see [`crate::format_image`]) to mount at paths inside the container:
    /// `(image, path)`; a path under `/tmp` is created, any other must exist.
    pub volumes: Vec<(PathBuf, PathBuf)>,
    /// Directory kept visible read-only at the same path even if it lies under `/tmp`.
    pub project_dir: PathBuf,
    /// Where the test's stdout and stderr go.
    pub stdout: File,
    pub stderr: File,
    /// Name of the container's cgroup below the run's group, e.g. `a000042`.
    pub cgroup_name: String,
    /// `Some`: an `eth0` of its own on the run's bridge (isolated from other tests' ports),
    /// shaped to these rates; `None`: loopback only.
    pub network: Option<crate::net::Shaping>,
    /// `privileged = true`: the host view read-only but host root's powers (no user namespace,
    /// no seccomp filter, no own root). For tests that must manage the host.
    pub privileged: bool,
    /// Host directories hidden from the test behind an empty read-only tmpfs (psy's state
    /// directory: the store, logs, other tests' scratch areas and images).
    pub masked: Vec<PathBuf>,
    /// Calls the seccomp filter lets through beyond the default profile (`allow = [...]`).
    pub allow: crate::Allowances,
    /// Host directories shown writable at their own paths (at most [`MAX_WRITABLE`]).
    pub writable: Vec<PathBuf>,
    /// Host directories shown read-only (`nosuid`, `nodev`) at their own paths, mounted before
    /// the project, the masks and the writable directories, which land on top (at most
    /// [`MAX_WRITABLE`]).
    pub readonly: Vec<PathBuf>,
    /// `Some`: the root filesystem is this image's, not the host's (the project directory,
    /// scratch area, volumes and `writable`/`readonly` directories appear at their host paths
    /// inside it). Not with `privileged`.
    pub image: Option<ImageRoot>,
    /// `Some`: the container joins this network namespace (a scenario node's or driver's,
    /// already attached to its test's network; the caller keeps it across the node's restarts)
    /// instead of a pooled one. Not with `network`.
    pub join_netns: Option<std::os::fd::OwnedFd>,
    /// `Some`: the container's complete `/etc/hosts` (a scenario's node names): on the host's
    /// root this file is bound read-only over `/etc/hosts`; in an image its content is the
    /// writable layer's `etc/hosts`.
    pub hosts_file: Option<PathBuf>,
    /// The init starts no test: it sets the container up, then holds its namespaces for a
    /// process psy did not start (a warm fork) that joins them through [`crate::JoinEntry`],
    /// and waits, reaping orphans, until it is killed. `argv` is not run (it names the test
    /// in errors only).
    pub hold: bool,
}

/// How many `writable` directories one container may have.
pub const MAX_WRITABLE: usize = 16;

/// How many volumes one container may have (each is mounted before the init enters its root).
pub const MAX_VOLUMES: usize = 16;
