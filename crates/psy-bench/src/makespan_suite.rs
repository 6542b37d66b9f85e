//! The synthetic suite of `psy bench makespan`, sized to this machine: two memory hogs that each
//! touch more than half of the test memory (so they can never run together), CPU-bound tests of
//! one core each, and medium and short sleeps with small CPU requests.

use anyhow::{ensure, Context};
use psy_config::format_size;
use psy_model::{Capacity, Resources, MILLI_PER_CPU};
use std::fmt::Write as _;
use std::process::Command;

/// `[host] reserve-memory` of the generated manifest: kept for psy and the rest of the machine.
pub(crate) const RESERVE_MEMORY: u64 = 1 << 30;
/// Declared memory of a hog beyond what it touches (the interpreter, page tables).
const HOG_HEADROOM: u64 = 256 << 20;
const HOG_HOLD_SECS: u32 = 5;
/// Touching gigabytes is kernel work (zeroing pages) charged to the hog's CPU quota: a small
/// quota would stretch the allocation to minutes.
const HOG_CPU_MILLIS: u32 = MILLI_PER_CPU;
const BUSY_SECS: u32 = 6;
const MID_SECS: u32 = 4;
const MID_CPU_MILLIS: u32 = 500;
const MID_MEMORY: u64 = 1 << 30;
const SHORT_SECS: &str = "0.5";
const SHORT_CPU_MILLIS: u32 = 100;
const SMALL_MEMORY: u64 = 128 << 20;
const TMP_BYTES: u64 = 16 << 20;
const PIDS: u32 = 256;

/// One test of the suite; its command is `sh tests/<name>.sh`, run from the project directory
/// by psy and by the naive peer alike.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) script: String,
    pub(crate) resources: Resources,
}

impl Case {
    fn new(name: String, script: String, cpu_millis: u32, memory_bytes: u64) -> Self {
        Case {
            name,
            script,
            resources: Resources {
                cpu_millis,
                memory_bytes,
                pids: PIDS,
                tmp_bytes: TMP_BYTES,
                disk_bytes: None,
                io: None,
                network: None,
            },
        }
    }

    pub(crate) fn script_path(&self) -> String {
        format!("tests/{}.sh", self.name)
    }
}

/// The suite, and how many bytes each hog touches.
#[derive(Debug)]
pub(crate) struct Suite {
    pub(crate) cases: Vec<Case>,
    pub(crate) hog_touch: u64,
}

/// The absolute path of the host's `python3` (an interpreter, not a pyenv shim script, so
/// nothing needs to write while starting in a read-only container).
pub(crate) fn find_python() -> anyhow::Result<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .context("running python3 (needed for the memory hogs)")?;
    ensure!(out.status.success(), "python3 failed ({})", out.status);
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(!path.is_empty(), "python3 did not print its executable");
    Ok(path)
}

/// Builds the suite for `capacity`, names in alphabetical order (the order the naive peer runs
/// them in). Each hog touches `hog_fraction` of the test memory; the fraction must leave the
/// hog schedulable alone and too big to share the machine with the other hog.
pub(crate) fn plan(capacity: &Capacity, hog_fraction: f64, python: &str) -> anyhow::Result<Suite> {
    let hog_touch = ((capacity.memory_bytes as f64 * hog_fraction) as u64) & !((1 << 20) - 1);
    let hog_memory = hog_touch + HOG_HEADROOM;
    ensure!(
        hog_memory <= capacity.memory_bytes,
        "--hog-fraction {hog_fraction}: a hog would declare {} but psy has only {} for tests",
        format_size(hog_memory),
        format_size(capacity.memory_bytes)
    );
    ensure!(
        2 * hog_touch > capacity.memory_bytes,
        "--hog-fraction {hog_fraction}: two hogs of {} would fit in {} together; use more than 0.5",
        format_size(hog_touch),
        format_size(capacity.memory_bytes)
    );
    let cores = (capacity.cpu_millis / MILLI_PER_CPU).max(1) as usize;
    let mut cases = Vec::new();
    for i in 1..=2 * cores {
        let script = format!("timeout {BUSY_SECS} sh -c 'while :; do :; done'\n[ $? -eq 124 ]\n");
        cases.push(Case::new(
            format!("busy-cpu-{i}"),
            script,
            MILLI_PER_CPU,
            SMALL_MEMORY,
        ));
    }
    for i in 1..=2 {
        // Touching one byte per page makes the kernel back every page: the memory is really used.
        let script = format!(
            "exec {python} -c 'import time; n = {hog_touch}; b = bytearray(n); \
             b[::4096] = bytes([1]) * len(range(0, n, 4096)); time.sleep({HOG_HOLD_SECS})'\n"
        );
        cases.push(Case::new(
            format!("mem-hog-{i}"),
            script,
            HOG_CPU_MILLIS,
            hog_memory,
        ));
    }
    for i in 1..=3 * cores {
        let script = format!("exec sleep {MID_SECS}\n");
        cases.push(Case::new(
            format!("mid-sleep-{i}"),
            script,
            MID_CPU_MILLIS,
            MID_MEMORY,
        ));
    }
    for i in 1..=20 * cores {
        let script = format!("exec sleep {SHORT_SECS}\n");
        cases.push(Case::new(
            format!("short-sleep-{i:03}"),
            script,
            SHORT_CPU_MILLIS,
            SMALL_MEMORY,
        ));
    }
    Ok(Suite { cases, hog_touch })
}

impl Suite {
    /// The `psyduck.toml` running every case with its declared resources.
    pub(crate) fn manifest(&self) -> String {
        let mut s = format!(
            "# psy bench makespan: synthetic suite sized to this machine.\n\
             [host]\nreserve-memory = {RESERVE_MEMORY}\n\n\
             [defaults]\nretries = 0\ntimeout = \"120s\"\ntmp = {TMP_BYTES}\npids = {PIDS}\n"
        );
        for c in &self.cases {
            let _ = write!(
                s,
                "\n[[test]]\nname = \"{}\"\ncommand = [\"sh\", \"{}\"]\ncpus = {}\nmemory = {}\n",
                c.name,
                c.script_path(),
                f64::from(c.resources.cpu_millis) / f64::from(MILLI_PER_CPU),
                c.resources.memory_bytes
            );
        }
        s
    }

    /// One line per kind of test, for the report's header.
    pub(crate) fn describe(&self) -> Vec<String> {
        let count = |prefix: &str| {
            self.cases
                .iter()
                .filter(|c| c.name.starts_with(prefix))
                .count()
        };
        vec![
            format!(
                "{} mem-hog: touch {} each (declared {}, cpus {}), then sleep {HOG_HOLD_SECS}s",
                count("mem-hog"),
                format_size(self.hog_touch),
                format_size(self.hog_touch + HOG_HEADROOM),
                f64::from(HOG_CPU_MILLIS) / 1e3
            ),
            format!(
                "{} busy-cpu: spin {BUSY_SECS}s (cpus 1, memory {})",
                count("busy-cpu"),
                format_size(SMALL_MEMORY)
            ),
            format!(
                "{} mid-sleep: sleep {MID_SECS}s (cpus {}, memory {})",
                count("mid-sleep"),
                f64::from(MID_CPU_MILLIS) / 1e3,
                format_size(MID_MEMORY)
            ),
            format!(
                "{} short-sleep: sleep {SHORT_SECS}s (cpus {}, memory {})",
                count("short-sleep"),
                f64::from(SHORT_CPU_MILLIS) / 1e3,
                format_size(SMALL_MEMORY)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity() -> Capacity {
        Capacity {
            cpu_millis: 2000,
            memory_bytes: 22 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: Default::default(),
        }
    }

    #[test]
    fn hogs_fit_alone_but_not_together() {
        let suite = plan(&capacity(), 0.62, "/usr/bin/python3").unwrap();
        let hogs: Vec<_> = suite
            .cases
            .iter()
            .filter(|c| c.name.starts_with("mem-hog"))
            .collect();
        assert_eq!(hogs.len(), 2);
        let m = hogs[0].resources.memory_bytes;
        assert!(m <= 22 << 30 && 2 * m > 22 << 30);
        assert!(hogs[0].script.contains(&suite.hog_touch.to_string()));
        assert!(plan(&capacity(), 0.4, "p").is_err());
        assert!(plan(&capacity(), 1.0, "p").is_err());
    }

    #[test]
    fn manifest_parses_with_the_declared_resources_in_name_order() {
        let suite = plan(&capacity(), 0.62, "/usr/bin/python3").unwrap();
        let dir = std::path::Path::new("/");
        let manifest =
            psy_config::parse(&dir.join("psyduck.toml"), dir, &suite.manifest()).unwrap();
        assert_eq!(manifest.host.reserve_memory_bytes, RESERVE_MEMORY);
        let tests = manifest.expand(&[]).unwrap();
        assert_eq!(tests.len(), suite.cases.len());
        let mut names: Vec<_> = suite.cases.iter().map(|c| c.name.clone()).collect();
        names.sort();
        for ((t, c), sorted) in tests.iter().zip(&suite.cases).zip(&names) {
            assert_eq!(&t.name, &c.name);
            assert_eq!(&c.name, sorted);
            assert_eq!(t.resources, c.resources);
            assert_eq!(t.command, vec!["sh".to_string(), c.script_path()]);
        }
    }
}
