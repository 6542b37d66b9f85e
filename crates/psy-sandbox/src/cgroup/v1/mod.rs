//! cgroup v1: one `psyduck` directory per controller hierarchy, a group is one leaf in each.

mod group;
mod limits;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::detect::BASE_DIR_NAME;
use super::error::CgroupError;
use super::{files, gc_children, validate_name};
use super::{Cgroup, CgroupDriver, CgroupLimits, CgroupVersion, GcReport};

pub(crate) use group::V1Group;

/// The v1 controllers Psyduck uses (others, like devices, are left alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum V1Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Pids,
    Freezer,
    Blkio,
}

impl V1Controller {
    pub const ALL: [V1Controller; 7] = [
        V1Controller::Cpu,
        V1Controller::Cpuacct,
        V1Controller::Cpuset,
        V1Controller::Memory,
        V1Controller::Pids,
        V1Controller::Freezer,
        V1Controller::Blkio,
    ];

    /// The name used in mount options and `/proc/self/cgroup`.
    pub fn name(self) -> &'static str {
        match self {
            V1Controller::Cpu => "cpu",
            V1Controller::Cpuacct => "cpuacct",
            V1Controller::Cpuset => "cpuset",
            V1Controller::Memory => "memory",
            V1Controller::Pids => "pids",
            V1Controller::Freezer => "freezer",
            V1Controller::Blkio => "blkio",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A mounted v1 hierarchy (several controllers may share one, e.g. `cpu,cpuacct`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub mount: PathBuf,
    /// Sorted.
    pub controllers: Vec<V1Controller>,
}

/// One hierarchy's `psyduck` directory.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub(crate) dir: PathBuf,
    pub(crate) controllers: Vec<V1Controller>,
}

impl Base {
    pub(crate) fn has(&self, c: V1Controller) -> bool {
        self.controllers.contains(&c)
    }
}

/// The v1 [`CgroupDriver`].
#[derive(Debug)]
pub(crate) struct V1Driver {
    prefix: String,
    bases: Vec<Base>,
    missing: Vec<String>,
    /// Intermediate groups (a run's `psy-<pid>-<run>`) already created and prepared: creating an
    /// attempt's group under one is then a bare `mkdir` + limits, which keeps container start fast.
    prepared_parents: Mutex<HashSet<String>>,
}

impl V1Driver {
    /// Creates `<mount>/psyduck` in each hierarchy, ready to hold groups.
    pub(crate) fn setup(hierarchies: &[V1Hierarchy], prefix: &str) -> Result<Self, CgroupError> {
        let mut bases = Vec::new();
        for h in hierarchies {
            let dir = h.mount.join(BASE_DIR_NAME);
            files::mkdir(&dir)?;
            limits::prepare_parent(&dir, &h.controllers)?;
            bases.push(Base {
                dir,
                controllers: h.controllers.clone(),
            });
        }
        Ok(Self::new(bases, prefix))
    }

    fn new(bases: Vec<Base>, prefix: &str) -> Self {
        let missing = missing_guarantees(&bases);
        for m in &missing {
            tracing::debug!(missing = %m, "cgroup v1 guarantee unavailable");
        }
        V1Driver {
            prefix: prefix.to_owned(),
            bases,
            missing,
            prepared_parents: Mutex::new(HashSet::new()),
        }
    }

    fn group(&self, name: &str) -> V1Group {
        V1Group::new(name, &self.bases)
    }

    /// The hierarchies an attempt's group needs. Every extra hierarchy costs a `mkdir`, a
    /// membership write and an `rmdir` on the start path, so: no cpuset without exclusive cores,
    /// no separate cpuacct (CPU time comes from the init's rusage, which covers every process of
    /// the PID namespace) and no freezer (the PID namespace already takes every process down
    /// with its init; `kill_all` still signals whatever is listed) unless the group must be frozen
    /// (`freezable`). blkio only with IO limits:
    /// IO stats come from it too, so groups without IO limits have none.
    fn bases_for(&self, limits: &CgroupLimits) -> Vec<Base> {
        self.bases
            .iter()
            .filter(|b| {
                b.controllers.iter().any(|c| match c {
                    V1Controller::Cpu | V1Controller::Memory | V1Controller::Pids => true,
                    V1Controller::Cpuset => limits
                        .exclusive_cores
                        .as_ref()
                        .is_some_and(|c| !c.is_empty()),
                    V1Controller::Blkio => limits.io.is_some(),
                    V1Controller::Freezer => limits.freezable,
                    V1Controller::Cpuacct => false,
                })
            })
            .cloned()
            .collect()
    }

    /// Creates and prepares `parent` once; children then inherit cpuset and hierarchy settings
    /// (`cgroup.clone_children`), so they need no per-level setup.
    fn ensure_parent(&self, parent: &str) -> Result<(), CgroupError> {
        let mut prepared = self
            .prepared_parents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if parent.is_empty() || prepared.contains(parent) {
            return Ok(());
        }
        for base in &self.bases {
            let controllers = &base.controllers;
            files::make_path(&base.dir, parent, &mut |dir, _| {
                limits::prepare_parent(dir, controllers)
            })?;
        }
        prepared.insert(parent.to_owned());
        Ok(())
    }
}

impl CgroupDriver for V1Driver {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self, name: &str, limits: &CgroupLimits) -> Result<Box<dyn Cgroup>, CgroupError> {
        validate_name(name)?;
        let bases = self.bases_for(limits);
        let group = V1Group::new(name, &bases);
        let created = (|| {
            let (parent, _) = name.rsplit_once('/').unwrap_or(("", name));
            self.ensure_parent(parent)?;
            for base in &bases {
                let dir = base.dir.join(name);
                if !files::mkdir(&dir)? {
                    // Re-used directory: repair what a fresh child would have inherited.
                    limits::prepare_dir(&dir, &base.controllers)?;
                }
                limits::apply(&dir, &base.controllers, limits)?;
            }
            Ok(())
        })();
        match created {
            Ok(()) => Ok(Box::new(group)),
            Err(e) => {
                // Leave no half-made group behind (nothing runs in it yet).
                if let Err(cleanup) = Box::new(group).remove() {
                    tracing::warn!(error = %cleanup, "cannot clean up half-created cgroup");
                }
                Err(e)
            }
        }
    }

    fn remove_group(&self, name: &str) -> Result<(), CgroupError> {
        validate_name(name)?;
        self.prepared_parents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Box::new(self.group(name)).remove()
    }

    fn gc(&self, is_alive: &dyn Fn(super::Owner) -> bool) -> Result<GcReport, CgroupError> {
        let mut names = Vec::new();
        for base in &self.bases {
            names.extend(files::child_dirs(&base.dir)?);
        }
        names.sort();
        names.dedup();
        Ok(gc_children(&self.prefix, names, is_alive, &|name| {
            let group = self.group(name);
            let killed = group.kill_counting()?;
            Box::new(group).remove()?;
            Ok(killed)
        }))
    }

    fn missing_guarantees(&self) -> Vec<String> {
        self.missing.clone()
    }
}

fn missing_guarantees(bases: &[Base]) -> Vec<String> {
    let find = |c: V1Controller| bases.iter().find(|b| b.has(c)).map(|b| b.dir.as_path());
    let absent = |dir: &Path, file: &str| !dir.join(file).exists();
    let mut missing = Vec::new();
    match find(V1Controller::Cpu) {
        None => missing.push("cpu limits: no cpu controller".to_owned()),
        Some(dir) if absent(dir, "cpu.cfs_quota_us") => missing.push(
            "cpu limits: kernel lacks CFS bandwidth control (no cpu.cfs_quota_us); \
             only proportional cpu.shares apply"
                .to_owned(),
        ),
        Some(_) => {}
    }
    if find(V1Controller::Cpuset).is_none() {
        missing.push("exclusive cores: no cpuset controller".to_owned());
    }
    match find(V1Controller::Memory) {
        None => missing.push("memory limits: no memory controller".to_owned()),
        Some(dir) if absent(dir, "memory.memsw.limit_in_bytes") => missing.push(
            "memory limits: swap is not limited (no memory.memsw.limit_in_bytes; boot with \
             swapaccount=1)"
                .to_owned(),
        ),
        Some(_) => {}
    }
    if find(V1Controller::Pids).is_none() {
        missing.push("process limits: no pids controller".to_owned());
    }
    if find(V1Controller::Freezer).is_none() {
        missing.push(
            "reliable kill: no freezer controller; a fast-forking test may outlive one kill pass"
                .to_owned(),
        );
    }
    match find(V1Controller::Blkio) {
        None => missing.push("io limits: no blkio controller".to_owned()),
        Some(dir) if absent(dir, "blkio.throttle.write_bps_device") => missing.push(
            "io limits: kernel lacks blkio throttling (no blkio.throttle.*; \
             CONFIG_BLK_DEV_THROTTLING)"
                .to_owned(),
        ),
        Some(dir) if absent(dir, "blkio.weight") && absent(dir, "blkio.bfq.weight") => missing
            .push(
                "io weight: no blkio.weight or blkio.bfq.weight (no CFQ/BFQ scheduler); \
                 only io throttles apply"
                    .to_owned(),
            ),
        Some(_) => {}
    }
    if find(V1Controller::Cpuacct).is_none() {
        missing.push("cpu time stats: no cpuacct controller".to_owned());
    }
    missing
}

#[cfg(test)]
mod tests;
