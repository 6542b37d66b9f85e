//! Which of a test's guarantees this host cannot enforce, for `psy run --require-guarantees`.
//!
//! [`HostGuarantees`] gathers the host's facts once (cgroup layout and missing knobs, user
//! namespaces, loop devices, `mkfs.ext4`, the run's bridge, the disk behind the scratch area)
//! and answers, for each test's request, the list of [`Unenforced`] guarantees with why. The
//! decision is a pure function of those facts, so it is unit-tested on made-up hosts.

use crate::cgroup::{self, CgroupVersion};
use crate::confine::Confinement;
use crate::Sandbox;
use psy_model::Resources;
use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// How `Sandbox::new` words its warning when no cgroup is usable; the reason follows it.
const NO_CGROUP_WARNING: &str = "cgroup limits (CPU, memory, pids) are NOT enforced: ";

/// A guarantee a test can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guarantee {
    /// `cpus`: a CFS quota.
    Cpu,
    /// `cpus` under `cpu-policy = "exclusive"`: cores of its own (cpuset).
    ExclusiveCores,
    /// `memory`: a hard limit, swap included.
    Memory,
    /// `pids`: a task limit.
    Pids,
    /// `io` throttles.
    Io,
    /// `io.weight`.
    IoWeight,
    /// `disk`: a filesystem of its own.
    Disk,
    /// `[[test.volume]]`.
    Volumes,
    /// `network`: a shaped interface of its own.
    Network,
    /// Container root is not host root, and tests of a run are separate users.
    Confinement,
}

impl Guarantee {
    /// What the guarantee is, for messages ("memory limits are not enforced: ...").
    pub fn describe(self) -> &'static str {
        match self {
            Guarantee::Cpu => "CPU limits",
            Guarantee::ExclusiveCores => "exclusive cores",
            Guarantee::Memory => "memory limits",
            Guarantee::Pids => "process limits",
            Guarantee::Io => "IO throttles",
            Guarantee::IoWeight => "IO weights",
            Guarantee::Disk => "a filesystem of its own",
            Guarantee::Volumes => "volumes",
            Guarantee::Network => "a network interface of its own",
            Guarantee::Confinement => "a user namespace per slot",
        }
    }
}

/// What one test asks of the sandbox.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    pub resources: &'a Resources,
    /// Whole cores of its own (`cpu-policy = "exclusive"` and a whole-core `cpus`).
    pub exclusive_cores: bool,
    /// How many `[[test.volume]]` it mounts.
    pub volumes: usize,
    /// `privileged = true`: asks for host root's powers, so for no confinement.
    pub privileged: bool,
}

/// One guarantee a test asks for that this host cannot enforce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unenforced {
    pub guarantee: Guarantee,
    /// What is not enforced and why, naming the missing piece of the host ("memory limits are
    /// not enforced: cgroup v1 needs root and this process runs as uid 1001").
    pub why: String,
}

impl fmt::Display for Unenforced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// The host's gaps in one cgroup area, as `CgroupDriver::missing_guarantees` words them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CgroupGaps {
    version: Option<CgroupVersion>,
    cpu: Vec<String>,
    cpuset: Vec<String>,
    memory: Vec<String>,
    pids: Vec<String>,
    io: Vec<String>,
    io_weight: Vec<String>,
}

impl CgroupGaps {
    /// Sorts the driver's lines by what they take away; lines about stats or kill reliability
    /// are no guarantee a test asks for. Swap left unlimited only matters with swap on.
    fn classify(version: CgroupVersion, missing: &[String], swap_on: bool) -> Self {
        let mut gaps = CgroupGaps {
            version: Some(version),
            ..CgroupGaps::default()
        };
        for line in missing {
            let Some((area, why)) = line.split_once(": ") else {
                continue;
            };
            let list = match area {
                "cpu limits" => &mut gaps.cpu,
                "exclusive cores" => &mut gaps.cpuset,
                "memory limits" if why.starts_with("swap is not limited") && !swap_on => continue,
                "memory limits" => &mut gaps.memory,
                "process limits" => &mut gaps.pids,
                "io limits" => &mut gaps.io,
                "io weight" => &mut gaps.io_weight,
                _ => continue,
            };
            list.push(why.to_owned());
        }
        gaps
    }
}

/// What the host offers, as facts; see [`HostGuarantees::of`] for where each comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostFacts {
    root: bool,
    /// The driver's gaps, or why there is no usable cgroup at all.
    cgroups: Result<CgroupGaps, String>,
    confinement: Confinement,
    /// A loop device can be attached (`/dev/loop-control`), or why not.
    loop_devices: Result<(), String>,
    /// `mkfs.ext4` is on `PATH`, or why not.
    mkfs: Result<(), String>,
    /// The run's bridge and network namespaces, or why not.
    network: Result<(), String>,
    /// A block device holds the scratch area (IO throttles name it on cgroup v2), or why not.
    scratch_device: Result<(), String>,
}

/// The host's answer to "can you enforce what this test asks?".
#[derive(Clone, Debug)]
pub struct HostGuarantees {
    facts: HostFacts,
}

impl HostGuarantees {
    /// Reads the facts from `sandbox` (what `Sandbox::new` found) and the host (`/dev`,
    /// `/proc/swaps`, `PATH`, the disk under `scratch`, the directory scratch areas live in).
    pub(crate) fn of(sandbox: &Sandbox, scratch: &Path) -> Self {
        let root = sandbox.unprivileged.is_none();
        let cgroups = match &sandbox.cgroups {
            Some(driver) => Ok(CgroupGaps::classify(
                driver.version(),
                &driver.missing_guarantees(),
                swap_on(Path::new("/proc/swaps")),
            )),
            None => Err(sandbox
                .warnings
                .iter()
                .find_map(|w| w.strip_prefix(NO_CGROUP_WARNING))
                .unwrap_or("no usable cgroup")
                .to_owned()),
        };
        let network = match (&sandbox.netns_pool, root) {
            (Some(_), _) => Ok(()),
            (None, false) => Err("it needs root (the run's bridge is made by root)".to_owned()),
            (None, true) => Err("the run's bridge and network namespaces could not be made \
                                 (see the log: `ip` and `tc` from iproute2 are needed)"
                .to_owned()),
        };
        HostGuarantees {
            facts: HostFacts {
                root,
                cgroups,
                confinement: sandbox.confinement(),
                loop_devices: loop_devices(Path::new("/dev/loop-control")),
                mkfs: on_path("mkfs.ext4"),
                network,
                scratch_device: scratch_device(scratch),
            },
        }
    }

    /// Every guarantee in `asked` this host cannot enforce, with why; empty when all hold.
    pub fn unenforced(&self, asked: &Asked<'_>) -> Vec<Unenforced> {
        unenforced(&self.facts, asked)
    }
}

/// The decision, on facts alone.
fn unenforced(facts: &HostFacts, asked: &Asked<'_>) -> Vec<Unenforced> {
    let mut out = Vec::new();
    let mut gap = |guarantee: Guarantee, why: String| out.push(Unenforced { guarantee, why });
    let r = asked.resources;
    let cgroup_area = |pick: fn(&CgroupGaps) -> &Vec<String>| -> Option<String> {
        match &facts.cgroups {
            Err(reason) => Some(reason.clone()),
            Ok(gaps) => {
                let lines = pick(gaps);
                (!lines.is_empty()).then(|| lines.join("; "))
            }
        }
    };
    let cgroup_asks = [
        (
            r.cpu_millis > 0,
            Guarantee::Cpu,
            (|g| &g.cpu) as fn(&CgroupGaps) -> &Vec<String>,
        ),
        (asked.exclusive_cores, Guarantee::ExclusiveCores, |g| {
            &g.cpuset
        }),
        (r.memory_bytes > 0, Guarantee::Memory, |g| &g.memory),
        (r.pids > 0, Guarantee::Pids, |g| &g.pids),
        (r.io.is_some(), Guarantee::Io, |g| &g.io),
        (
            r.io.as_ref().is_some_and(|io| io.weight.is_some()),
            Guarantee::IoWeight,
            |g| &g.io_weight,
        ),
    ];
    for (wanted, guarantee, pick) in cgroup_asks {
        if let Some(why) = wanted.then(|| cgroup_area(pick)).flatten() {
            gap(
                guarantee,
                format!("{} are not enforced: {why}", guarantee.describe()),
            );
        }
    }
    let v1 = matches!(&facts.cgroups, Ok(g) if g.version == Some(CgroupVersion::V1));
    // The same device facts, for each guarantee that needs them.
    let needs_image = |why_for: &str| -> Option<String> {
        if !facts.root {
            return Some(format!("{why_for} needs root (a loop device)"));
        }
        if let Err(e) = &facts.loop_devices {
            return Some(format!("no loop device for {why_for}: {e}"));
        }
        facts
            .mkfs
            .as_ref()
            .err()
            .map(|e| format!("{why_for} needs e2fsprogs: {e}"))
    };
    if r.io.is_some() && facts.cgroups.is_ok() {
        // cgroup v1 as root throttles a filesystem of the test's own on a loop device (see
        // `Sandbox::prepare`); otherwise the throttle names the disk under the scratch area.
        let why = if v1 && facts.root {
            needs_image("`io` on cgroup v1")
        } else {
            facts
                .scratch_device
                .as_ref()
                .err()
                .map(|e| format!("`io` needs a block device under the scratch area: {e}"))
        };
        if let Some(why) = why {
            gap(Guarantee::Io, why);
        }
    }
    if r.disk_bytes.is_some() {
        if let Some(why) = needs_image("`disk`") {
            gap(Guarantee::Disk, why);
        }
    }
    if asked.volumes > 0 {
        if let Some(why) = needs_image("`[[test.volume]]`") {
            gap(Guarantee::Volumes, why);
        }
    }
    if r.network.is_some() {
        if let Err(e) = &facts.network {
            gap(Guarantee::Network, format!("`network` {e}"));
        }
    }
    if !asked.privileged {
        let why = match facts.confinement {
            Confinement::SlotUserns => None,
            Confinement::NestedUserns => Some(
                "rootless: every test runs as psy's own user on the host (a nested user \
                 namespace, not a host uid range per slot)",
            ),
            Confinement::DockerCaps => Some(
                "user namespaces unavailable: tests would run as host root with Docker's \
                 capabilities",
            ),
            Confinement::Privileged => {
                Some("hardening is off: tests would run with host root's powers")
            }
        };
        if let Some(why) = why {
            gap(Guarantee::Confinement, why.to_owned());
        }
    }
    out
}

/// Whether `/proc/swaps` lists any swap area (below its header line).
fn swap_on(swaps: &Path) -> bool {
    std::fs::read_to_string(swaps).map_or(true, |text| {
        text.lines().skip(1).any(|l| !l.trim().is_empty())
    })
}

/// Whether `control` is the loop control device (misc character device 10:237).
fn loop_devices(control: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(control) {
        Ok(meta)
            if meta.file_type().is_char_device()
                && (libc::major(meta.rdev()), libc::minor(meta.rdev())) == (10, 237) =>
        {
            Ok(())
        }
        Ok(_) => Err(format!(
            "{} is not the loop control device",
            control.display()
        )),
        Err(e) => Err(format!("{}: {e}", control.display())),
    }
}

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    if found {
        Ok(())
    } else {
        Err(format!("`{program}` is not on PATH"))
    }
}

/// Whether a block device holds `scratch` (or its nearest existing parent: scratch areas are
/// made as tests start).
fn scratch_device(scratch: &Path) -> Result<(), String> {
    let existing = scratch.ancestors().find(|p| p.exists()).unwrap_or(scratch);
    cgroup::block_device_of(existing)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
