//! cgroup v2: one unified tree; groups live under the base with controllers delegated to them.

mod group;
mod limits;
mod setup;

use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::{files, gc_children, validate_name};
use super::{Cgroup, CgroupDriver, CgroupLimits, CgroupVersion, GcReport};

pub(crate) use group::V2Group;

/// Controllers Psyduck enables for its groups.
pub(crate) const WANTED: [&str; 5] = ["cpu", "cpuset", "memory", "pids", "io"];

/// The v2 [`CgroupDriver`].
#[derive(Debug)]
pub(crate) struct V2Driver {
    prefix: String,
    base: PathBuf,
    /// Controllers enabled in the base's `cgroup.subtree_control`, i.e. available to groups.
    enabled: Vec<String>,
    missing: Vec<String>,
}

impl V2Driver {
    /// Root: enables controllers in the mount root, creates `base` below it and enables them there.
    pub(crate) fn setup_root(mount: &Path, base: &Path, prefix: &str) -> Result<Self, CgroupError> {
        let mut problems = setup::enable(mount, &WANTED)?.problems;
        files::mkdir(base)?;
        let enabled = setup::enable(base, &WANTED)?;
        problems.extend(enabled.problems);
        Ok(Self::new(base, prefix, enabled.controllers, problems))
    }

    /// Delegated subtree `own`: moves process `pid` into `own/supervisor` so `own` has no
    /// processes of its own (the "no internal processes" rule), then enables controllers in `own`.
    pub(crate) fn setup_delegated(own: &Path, pid: u32, prefix: &str) -> Result<Self, CgroupError> {
        setup::move_into_leaf(own, pid)?;
        let enabled = setup::enable(own, &WANTED)?;
        Ok(Self::new(
            own,
            prefix,
            enabled.controllers,
            enabled.problems,
        ))
    }

    fn new(base: &Path, prefix: &str, enabled: Vec<String>, problems: Vec<String>) -> Self {
        let missing = setup::missing_guarantees(base, &enabled, problems);
        for m in &missing {
            tracing::debug!(missing = %m, "cgroup v2 guarantee unavailable");
        }
        V2Driver {
            prefix: prefix.to_owned(),
            base: base.to_path_buf(),
            enabled,
            missing,
        }
    }
}

impl CgroupDriver for V2Driver {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self, name: &str, limits: &CgroupLimits) -> Result<Box<dyn Cgroup>, CgroupError> {
        validate_name(name)?;
        let group = V2Group::new(&self.base, name, &self.enabled);
        let created = files::make_path(&self.base, name, &mut |dir, is_leaf| {
            if is_leaf {
                limits::apply(dir, &self.enabled, limits)
            } else {
                // Controllers reach a child only through every ancestor's subtree_control.
                limits::delegate(dir, &self.enabled)
            }
        });
        match created {
            Ok(_) => Ok(Box::new(group)),
            Err(e) => {
                if let Err(cleanup) = Box::new(group).remove() {
                    tracing::warn!(error = %cleanup, "cannot clean up half-created cgroup");
                }
                Err(e)
            }
        }
    }

    fn remove_group(&self, name: &str) -> Result<(), CgroupError> {
        validate_name(name)?;
        Box::new(V2Group::new(&self.base, name, &self.enabled)).remove()
    }

    fn gc(&self, is_alive: &dyn Fn(super::Owner) -> bool) -> Result<GcReport, CgroupError> {
        let names = files::child_dirs(&self.base)?;
        Ok(gc_children(&self.prefix, names, is_alive, &|name| {
            let group = V2Group::new(&self.base, name, &self.enabled);
            let killed = group.kill_counting()?;
            Box::new(group).remove()?;
            Ok(killed)
        }))
    }

    fn missing_guarantees(&self) -> Vec<String> {
        self.missing.clone()
    }
}

#[cfg(test)]
mod tests;
