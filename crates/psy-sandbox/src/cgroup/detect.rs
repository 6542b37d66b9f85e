//! Finding out which cgroup setup this host has and where Psyduck may create its groups.
//!
//! Everything is read from `<proc_root>/self/{mountinfo,cgroup,status}` and the mounts named
//! there, so a fake `/proc` plus a temp dir stand in for a real host in unit tests. [`inspect`]
//! only reads; [`setup`] creates the base directories and (delegated v2) moves the caller;
//! [`detect`] does both.

use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::files;
use super::v1::{V1Controller, V1Hierarchy};
use super::{CgroupDriver, CgroupVersion};

/// Directory under the v1 hierarchy / v2 mount root that holds every group when running as root.
pub const BASE_DIR_NAME: &str = "psyduck";

/// The outcome of [`detect`]: a ready driver, or why there is none.
#[derive(Debug)]
pub struct Detected {
    pub layout: Layout,
    /// `None` exactly when `layout` is [`Layout::Unavailable`].
    pub driver: Option<Box<dyn CgroupDriver>>,
    /// Why `driver` is `None`, worded for a warning.
    pub reason: Option<String>,
}

/// Which cgroup API is usable, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Root on cgroup v1 (legacy or hybrid): one `psyduck` dir per controller hierarchy.
    V1 { hierarchies: Vec<V1Hierarchy> },
    /// Root on cgroup v2: groups live in `<mount>/psyduck`.
    V2Root { mount: PathBuf },
    /// A normal user owning a delegated v2 subtree (its own cgroup): groups live in `own`, and
    /// setup first moves this process into `own/supervisor` (the "no internal processes" rule).
    V2Delegated { own: PathBuf },
    /// No cgroup Psyduck can write to; tests run without resource guarantees.
    Unavailable { reason: String },
}

impl Layout {
    /// The cgroup version in use, if any.
    pub fn version(&self) -> Option<CgroupVersion> {
        match self {
            Layout::V1 { .. } => Some(CgroupVersion::V1),
            Layout::V2Root { .. } | Layout::V2Delegated { .. } => Some(CgroupVersion::V2),
            Layout::Unavailable { .. } => None,
        }
    }

    /// Why no cgroup is usable, when none is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            Layout::Unavailable { reason } => Some(reason),
            _ => None,
        }
    }
}

/// [`inspect`] then [`setup`]: the driver for groups named `<prefix>-...`, ready to use.
pub fn detect(proc_root: &Path, prefix: &str) -> Result<Detected, CgroupError> {
    let layout = inspect(proc_root)?;
    let driver = setup(&layout, prefix)?;
    let reason = layout.unavailable_reason().map(str::to_owned);
    Ok(Detected {
        layout,
        driver,
        reason,
    })
}

/// Creates the base directories and enables controllers (delegated v2: after moving this
/// process into [`SUPERVISOR_LEAF`]). `Ok(None)` when the layout is unavailable. `prefix` names
/// the groups [`CgroupDriver::gc`] may reclaim.
pub fn setup(layout: &Layout, prefix: &str) -> Result<Option<Box<dyn CgroupDriver>>, CgroupError> {
    let driver: Box<dyn CgroupDriver> = match layout {
        Layout::V1 { hierarchies } => Box::new(super::v1::V1Driver::setup(hierarchies, prefix)?),
        Layout::V2Root { mount } => Box::new(super::v2::V2Driver::setup_root(
            mount,
            &mount.join(BASE_DIR_NAME),
            prefix,
        )?),
        Layout::V2Delegated { own } => Box::new(super::v2::V2Driver::setup_delegated(
            own,
            std::process::id(),
            prefix,
        )?),
        Layout::Unavailable { .. } => return Ok(None),
    };
    Ok(Some(driver))
}

/// Reads the host's cgroup setup as seen from `proc_root` (normally `/proc`); no side effects.
pub fn inspect(proc_root: &Path) -> Result<Layout, CgroupError> {
    let mountinfo_path = proc_root.join("self/mountinfo");
    let mounts = parse_mountinfo(&mountinfo_path, &files::read(&mountinfo_path)?)?;
    let status_path = proc_root.join("self/status");
    let euid = parse_euid(&status_path, &files::read(&status_path)?)?;
    let layout = choose(proc_root, &mounts, euid)?;
    tracing::debug!(?layout, euid, "cgroup setup detected");
    Ok(layout)
}

/// Name of the leaf a delegated-v2 caller moves itself into before enabling controllers.
pub const SUPERVISOR_LEAF: &str = "supervisor";

fn choose(proc_root: &Path, mounts: &[Mount], euid: u32) -> Result<Layout, CgroupError> {
    let hierarchies = v1_hierarchies(mounts);
    let v1_has_resources = hierarchies.iter().any(|h| {
        h.controllers.iter().any(|c| {
            matches!(
                c,
                V1Controller::Cpu | V1Controller::Memory | V1Controller::Pids
            )
        })
    });
    if v1_has_resources {
        // A controller is bound to one hierarchy only: if v1 holds them, the (hybrid) v2 mount
        // has none to offer.
        if euid != 0 {
            return Ok(unavailable(format!(
                "cgroup v1 needs root and this process runs as uid {euid}"
            )));
        }
        if let Some(ro) = hierarchies.iter().find(|h| !files::writable(&h.mount)) {
            return Ok(unavailable(format!(
                "cgroup v1 hierarchy {} is not writable (read-only mount?)",
                ro.mount.display()
            )));
        }
        return Ok(Layout::V1 { hierarchies });
    }
    let Some(v2) = mounts.iter().find(|m| m.fstype == "cgroup2") else {
        return Ok(unavailable("no cgroup filesystem is mounted".to_owned()));
    };
    if euid == 0 && files::writable(&v2.mount_point) {
        return Ok(Layout::V2Root {
            mount: v2.mount_point.clone(),
        });
    }
    let cgroup_path = proc_root.join("self/cgroup");
    let Some(own_rel) = own_v2_cgroup(&files::read(&cgroup_path)?) else {
        return Ok(unavailable(format!(
            "{} has no cgroup v2 entry",
            cgroup_path.display()
        )));
    };
    // After setup this process lives in `<own>/supervisor`; detecting again must find `<own>`.
    let own_rel = match own_rel.strip_suffix(SUPERVISOR_LEAF) {
        Some(parent) if parent.ends_with('/') && parent.len() > 1 => {
            parent.trim_end_matches('/').to_owned()
        }
        _ => own_rel,
    };
    let Some(own) = v2_dir(v2, &own_rel) else {
        return Ok(unavailable(format!(
            "own cgroup {own_rel} is outside the cgroup2 mount at {}",
            v2.mount_point.display()
        )));
    };
    let delegated = ["cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| files::writable(&own.join(f)))
        && files::writable(&own);
    if delegated {
        Ok(Layout::V2Delegated { own })
    } else {
        Ok(unavailable(format!(
            "own cgroup {} is not delegated to uid {euid}; start psy under \
             `systemd-run --user --scope -p Delegate=yes` to get resource guarantees",
            own.display()
        )))
    }
}

fn unavailable(reason: String) -> Layout {
    tracing::debug!(%reason, "no usable cgroup");
    Layout::Unavailable { reason }
}

/// One line of `/proc/self/mountinfo`, reduced to what detection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Path inside the mounted filesystem that appears at `mount_point` (field 4).
    pub(crate) root: String,
    pub(crate) mount_point: PathBuf,
    pub(crate) fstype: String,
    pub(crate) super_options: Vec<String>,
}

/// Parses mountinfo (see proc(5)): `id parent maj:min root mount-point opts [optional...] - fstype
/// source super-opts`. Only cgroup mounts are returned.
pub(crate) fn parse_mountinfo(path: &Path, text: &str) -> Result<Vec<Mount>, CgroupError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || CgroupError::Parse {
            path: path.to_path_buf(),
            expected: "a mountinfo line with a ' - ' separator",
            found: line.to_owned(),
        };
        let (pre, post) = line.split_once(" - ").ok_or_else(bad)?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            return Err(bad());
        }
        if post[0] != "cgroup" && post[0] != "cgroup2" {
            continue;
        }
        mounts.push(Mount {
            root: unescape(pre[3]),
            mount_point: PathBuf::from(unescape(pre[4])),
            fstype: post[0].to_owned(),
            super_options: post[2].split(',').map(str::to_owned).collect(),
        });
    }
    Ok(mounts)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// v1 hierarchies carrying a controller Psyduck uses, first mount of each hierarchy only
/// (bind mounts repeat them).
fn v1_hierarchies(mounts: &[Mount]) -> Vec<V1Hierarchy> {
    let mut out: Vec<V1Hierarchy> = Vec::new();
    for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let mut controllers: Vec<V1Controller> = m
            .super_options
            .iter()
            .filter_map(|o| V1Controller::from_name(o))
            .collect();
        controllers.sort();
        let seen = out.iter().any(|h| h.controllers == controllers);
        if !controllers.is_empty() && !seen {
            out.push(V1Hierarchy {
                mount: m.mount_point.clone(),
                controllers,
            });
        }
    }
    out
}

/// The `0::<path>` entry of `/proc/self/cgroup`.
pub(crate) fn own_v2_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_owned())
}

/// Where the cgroup `rel` (as named in /proc/self/cgroup) appears under the v2 mount.
fn v2_dir(mount: &Mount, rel: &str) -> Option<PathBuf> {
    if rel.split('/').any(|c| c == "..") {
        return None; // outside our cgroup namespace
    }
    let inside = rel.strip_prefix(mount.root.trim_end_matches('/'))?;
    if !inside.is_empty() && !inside.starts_with('/') {
        return None; // "/a" must not match "/ab"
    }
    Some(mount.mount_point.join(inside.trim_start_matches('/')))
}

/// Effective uid from the `Uid:` line of `/proc/self/status` (real, effective, saved, fs).
fn parse_euid(path: &Path, text: &str) -> Result<u32, CgroupError> {
    let line = text.lines().find(|l| l.starts_with("Uid:"));
    line.and_then(|l| l.split_whitespace().nth(2))
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            expected: "a `Uid:` line with real and effective uid",
            found: line.unwrap_or_default().to_owned(),
        })
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
