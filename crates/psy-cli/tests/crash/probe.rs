//! Leak probes: what of a psy run is visible in /proc, /sys/fs/cgroup and the host's mounts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One /proc entry.
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) state: char,
    pub(crate) cmdline: String,
    pub(crate) environ: Vec<String>,
    pub(crate) netns: String,
}

impl std::fmt::Debug for Proc {
    /// Without the environment: failure messages stay readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Proc {
            pid,
            state,
            cmdline,
            netns,
            ..
        } = self;
        write!(f, "{pid} {state} {netns} {cmdline:?}")
    }
}

/// Every process but this one (zombies included, with empty cmdline and environ).
pub(crate) fn procs() -> Vec<Proc> {
    let me = std::process::id();
    let mut out = Vec::new();
    for path in entries(Path::new("/proc")) {
        let Ok(pid) = file_name(&path).parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // The state follows `(comm)`, which may hold spaces.
        let after = stat.rsplit_once(')').map_or("", |(_, s)| s);
        let after: Vec<&str> = after.split_whitespace().collect();
        let split = |file: &str| -> Vec<String> {
            let raw = std::fs::read(path.join(file)).unwrap_or_default();
            raw.split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        out.push(Proc {
            pid,
            state: after.first().and_then(|s| s.chars().next()).unwrap_or('?'),
            cmdline: split("cmdline").join(" "),
            environ: split("environ"),
            netns: link(&path.join("ns/net")),
        });
    }
    out
}

/// Host mounts pinning one of `netns` (an nsfs bind mount such as `ip netns add` makes).
pub(crate) fn netns_mounts(netns: &BTreeSet<String>) -> Vec<String> {
    let all = host_mounts(&["nsfs"]);
    all.into_iter()
        .filter(|m| netns.iter().any(|ns| m.contains(ns.as_str())))
        .collect()
}

/// Network namespaces bind-mounted by `ip netns add` (none of psy's business).
pub(crate) fn named_netns() -> usize {
    entries(Path::new("/run/netns")).len()
}

/// `psy-<pid>-*` cgroups of a psy this test started (`psy-<pid>n<pid namespace>-*` when the test
/// runs in a nested PID namespace, as when psy runs this suite: the psy it starts shares it)
/// under every v1 hierarchy's `psyduck` base and the v2 root's.
pub(crate) fn cgroup_dirs_of(pid: u32) -> Vec<PathBuf> {
    let ns = std::fs::read_link("/proc/self/ns/pid").expect("own PID namespace");
    let ns = ns.to_string_lossy();
    let inode = ns.trim_start_matches("pid:[").trim_end_matches(']');
    let prefix = match inode {
        "4026531836" => format!("psy-{pid}-"), // the initial PID namespace
        _ => format!("psy-{pid}n{inode}-"),
    };
    let mut bases = vec![PathBuf::from("/sys/fs/cgroup/psyduck")];
    let hierarchies = entries(Path::new("/sys/fs/cgroup"));
    bases.extend(hierarchies.into_iter().map(|h| h.join("psyduck")));
    bases
        .iter()
        .flat_map(|b| entries(b))
        .filter(|d| d.is_dir() && file_name(d).starts_with(&prefix))
        .collect()
}

/// Pids listed in `cgroup.procs` of `dirs` and every cgroup below them.
pub(crate) fn cgroup_pids(dirs: &[PathBuf]) -> Vec<String> {
    let mut pids = Vec::new();
    for dir in dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(
            procs
                .split_whitespace()
                .map(|p| format!("{p} in {}", dir.display())),
        );
        let children: Vec<PathBuf> = entries(dir).into_iter().filter(|d| d.is_dir()).collect();
        pids.extend(cgroup_pids(&children));
    }
    pids
}

/// The host's mounts whose line contains one of `patterns`, without the mount ids.
pub(crate) fn host_mounts(patterns: &[&str]) -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| patterns.iter().any(|p| l.contains(p)))
        .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
        .collect()
}

pub(crate) fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |rd| rd.flatten().map(|e| e.path()).collect(),
    )
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn link(p: &Path) -> String {
    std::fs::read_link(p)
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}
