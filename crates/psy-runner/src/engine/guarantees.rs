//! Strict mode (`psy run --require-guarantees`, `[host] require-guarantees = true`): the
//! selected tests' guarantees this host cannot enforce, refused before anything runs, or
//! reported as run warnings without it.

use psy_config::{format_cpus, format_size};
use psy_model::{CpuPolicy, TestSpec};
use psy_sandbox::{Asked, Guarantee, HostGuarantees, Unenforced};
use std::fmt;

/// Tests named under one gap before the rest are only counted.
const NAMED_PER_GAP: usize = 10;

/// One host gap (the same `why`) and the tests that ask for what it takes away.
#[derive(Debug)]
pub struct Gap {
    pub unenforced: Unenforced,
    /// In test order.
    pub asked_by: Vec<Asker>,
}

/// A test asking for a guarantee, and what exactly it asks.
#[derive(Debug)]
pub struct Asker {
    pub test: String,
    pub origin: String,
    /// The keys and values, e.g. `memory = 512MiB`.
    pub asked: String,
}

impl fmt::Display for Asker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "test `{}` ({}) asks {}",
            self.test, self.origin, self.asked
        )
    }
}

/// The selected tests' unenforceable guarantees, grouped by gap in the order first met.
pub(crate) fn find(host: &HostGuarantees, tests: &[TestSpec], policy: CpuPolicy) -> Vec<Gap> {
    let mut gaps: Vec<Gap> = Vec::new();
    for test in tests {
        let asked = Asked {
            resources: &test.resources,
            exclusive_cores: policy == CpuPolicy::Exclusive
                && test.resources.whole_cores().is_some(),
            volumes: test.volumes.len(),
            privileged: test.sandbox.privileged,
        };
        for unenforced in host.unenforced(&asked) {
            let line = Asker {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                asked: what_was_asked(test, unenforced.guarantee),
            };
            match gaps.iter_mut().find(|g| g.unenforced == unenforced) {
                Some(gap) => gap.asked_by.push(line),
                None => gaps.push(Gap {
                    unenforced,
                    asked_by: vec![line],
                }),
            }
        }
    }
    gaps
}

/// The manifest keys behind a guarantee, with the test's values.
fn what_was_asked(test: &TestSpec, guarantee: Guarantee) -> String {
    let r = &test.resources;
    match guarantee {
        Guarantee::Cpu => format!("cpus = {}", format_cpus(r.cpu_millis)),
        Guarantee::ExclusiveCores => format!(
            "cpus = {} with cpu-policy = \"exclusive\"",
            format_cpus(r.cpu_millis)
        ),
        Guarantee::Memory => format!("memory = {}", format_size(r.memory_bytes)),
        Guarantee::Pids => format!("pids = {}", r.pids),
        Guarantee::Io | Guarantee::IoWeight => {
            let io = r.io.clone().unwrap_or_default();
            let rate = |n: u64| format!("\"{}\"", format_size(n));
            let keys: Vec<String> = [
                ("read-bps", io.read_bps.map(rate)),
                ("write-bps", io.write_bps.map(rate)),
                ("read-iops", io.read_iops.map(|n| n.to_string())),
                ("write-iops", io.write_iops.map(|n| n.to_string())),
                ("weight", io.weight.map(|n| n.to_string())),
            ]
            .into_iter()
            .filter_map(|(key, value)| Some(format!("{key} = {}", value?)))
            .collect();
            format!("io = {{ {} }}", keys.join(", "))
        }
        Guarantee::Disk => format!("disk = {}", format_size(r.disk_bytes.unwrap_or(0))),
        Guarantee::Volumes => {
            let names: Vec<&str> = test.volumes.iter().map(|v| v.name.as_str()).collect();
            format!("[[test.volume]] {}", names.join(", "))
        }
        Guarantee::Network => "network".to_owned(),
        Guarantee::Confinement => "to be confined (it is not `privileged`)".to_owned(),
    }
}

/// Strict mode's refusal. Its message is one line (as every error of psy); [`Self::details`]
/// names each gap, why, and the tests asking for what it takes away, for the lines above it.
#[derive(Debug)]
pub struct Unenforceable(pub Vec<Gap>);

impl Unenforceable {
    /// Per gap: the gap and why, then up to `NAMED_PER_GAP` indented `test ... asks ...` lines.
    pub fn details(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for gap in &self.0 {
            lines.push(gap.unenforced.to_string());
            lines.extend(
                gap.asked_by
                    .iter()
                    .take(NAMED_PER_GAP)
                    .map(|a| format!("  {a}")),
            );
            if gap.asked_by.len() > NAMED_PER_GAP {
                let more = gap.asked_by.len() - NAMED_PER_GAP;
                lines.push(format!("  and {more} {} more", plural(more, "test")));
            }
        }
        lines
    }
}

impl fmt::Display for Unenforceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tests = distinct_tests(&self.0);
        write!(
            f,
            "{} selected {} {} for guarantees this host cannot enforce (listed above) and \
             guarantees are required (--require-guarantees or [host] require-guarantees = true); \
             nothing ran",
            tests,
            plural(tests, "test"),
            if tests == 1 { "asks" } else { "ask" },
        )
    }
}

impl std::error::Error for Unenforceable {}

/// How many tests ask for at least one of the gaps.
fn distinct_tests(gaps: &[Gap]) -> usize {
    let mut tests: Vec<&str> = gaps
        .iter()
        .flat_map(|g| &g.asked_by)
        .map(|a| a.test.as_str())
        .collect();
    tests.sort_unstable();
    tests.dedup();
    tests.len()
}

/// The gaps as one run warning (without strict mode): how many tests ask for what, with a
/// pointer to the flag that names them and why. The host's own warnings already say what the
/// host lacks, so this stays one line.
pub(crate) fn warnings(gaps: &[Gap]) -> Vec<String> {
    if gaps.is_empty() {
        return Vec::new();
    }
    let tests = distinct_tests(gaps);
    let mut what: Vec<(Guarantee, usize)> = Vec::new();
    for gap in gaps {
        let guarantee = gap.unenforced.guarantee;
        match what.iter_mut().find(|(g, _)| *g == guarantee) {
            Some((_, count)) => *count = (*count).max(gap.asked_by.len()),
            None => what.push((guarantee, gap.asked_by.len())),
        }
    }
    let what: Vec<String> = what
        .into_iter()
        .map(|(g, count)| format!("{} ({count} {})", g.describe(), plural(count, "test")))
        .collect();
    vec![format!(
        "{} {} {} for guarantees this host cannot enforce: {}; `psy run --require-guarantees` \
         names them and why, and refuses to run",
        tests,
        plural(tests, "test"),
        if tests == 1 { "asks" } else { "ask" },
        what.join(", ")
    )]
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
