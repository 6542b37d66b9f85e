//! `psy bench makespan`: how close `psy run` gets to the best possible makespan on a suite that
//! mixes memory hogs, CPU-bound tests and sleeps, with no OOM; beside psy-scheduler's simulation
//! of the same durations and a naive `xargs -P <cores>` that ignores declared resources.

use super::harness::{gib, memory_available, run_psy, Project, PsyRun};
use super::makespan_suite::{find_python, plan, Case, RESERVE_MEMORY};
use super::naive;
use anyhow::{ensure, Context};
use clap::Args;
use psy_model::{AttemptStatus, Capacity, CpuPolicy, TestStatus};
use psy_scheduler::simulate::{lower_bound, simulate};
use psy_scheduler::{Job, Limits};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct MakespanArgs {
    /// Runs of psy: the first has no history, later ones schedule with the durations learnt.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Memory each of the two hogs touches, as a fraction of psy's test memory (over 0.5, so
    /// two hogs never fit together).
    #[arg(long, default_value_t = 0.62)]
    hog_fraction: f64,
    /// Skip the naive peer (it deliberately drives a memory cgroup into OOM).
    #[arg(long)]
    no_naive: bool,
    /// Where to create the scratch project (default: the current directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Memory left to the rest of the host beyond what a hog (or the naive peer's cgroup) takes.
const HOST_MARGIN: u64 = 2 << 30;

/// One row of the results table.
struct Row {
    what: String,
    makespan: Duration,
    bound: Option<Duration>,
    ooms: usize,
    not_passed: usize,
}

pub fn run(args: MakespanArgs) -> anyhow::Result<ExitCode> {
    let capacity = psy_runner::capacity::detect(0, RESERVE_MEMORY);
    let total_memory = psy_runner::capacity::total_memory(Path::new("/proc"));
    let cores = capacity.cores.len().max(1);
    let suite = plan(&capacity, args.hog_fraction, &find_python()?)?;
    let project = Project::create(args.dir.as_deref())?;
    for case in &suite.cases {
        project.write(&case.script_path(), &case.script)?;
    }
    project.write_manifest(&suite.manifest())?;

    println!(
        "psy bench makespan: {} tests on {cores} cores, {} of memory",
        suite.cases.len(),
        gib(total_memory)
    );
    println!(
        "  psy's capacity for tests: {} CPUs, {} (reserve-memory {})",
        f64::from(capacity.cpu_millis) / 1e3,
        gib(capacity.memory_bytes),
        gib(RESERVE_MEMORY)
    );
    for line in suite.describe() {
        println!("  {line}");
    }
    println!("  project: {}", project.path().display());

    let mut rows = Vec::new();
    let mut psy_runs: Vec<PsyRun> = Vec::new();
    for k in 1..=args.runs.max(1) {
        ensure_host_can_spare(suite.hog_touch)?;
        let run = run_psy(&project, &format!("psy-run-{k}"))?;
        let jobs = jobs(&suite.cases, &run, false)?;
        let bound = lower_bound(&capacity, CpuPolicy::Shared, &Limits::default(), &jobs);
        let history = if k == 1 {
            "no history".to_string()
        } else {
            format!("history of {} runs", k - 1)
        };
        rows.push(Row {
            what: format!("psy run {k} ({history})"),
            makespan: run.wall,
            bound: Some(bound),
            ooms: run
                .attempts
                .iter()
                .filter(|a| a.status == AttemptStatus::Oom)
                .count(),
            not_passed: run
                .tests
                .iter()
                .filter(|t| t.status != TestStatus::Pass)
                .count(),
        });
        println!("  run {k}: {}", bound_components(&capacity, &jobs));
        psy_runs.push(run);
    }
    let last = psy_runs.last().context("no psy run")?;
    for (expected, label) in [(false, "no history"), (true, "exact history")] {
        let jobs = jobs(&suite.cases, last, expected)?;
        let sim = simulate(&capacity, CpuPolicy::Shared, &Limits::default(), &jobs)
            .context("simulating the scheduler")?;
        rows.push(Row {
            what: format!("psy-scheduler simulate, {label}"),
            makespan: sim.makespan,
            bound: Some(lower_bound(
                &capacity,
                CpuPolicy::Shared,
                &Limits::default(),
                &jobs,
            )),
            ooms: 0,
            not_passed: 0,
        });
    }
    let mut naive_note = None;
    if !args.no_naive {
        let available = memory_available()?;
        let limit = capacity
            .memory_bytes
            .min(available.saturating_sub(HOST_MARGIN));
        ensure!(
            limit > suite.hog_touch,
            "only {} of memory available now: too little for even one hog in the naive peer",
            gib(available)
        );
        let names: Vec<String> = suite.cases.iter().map(|c| c.name.clone()).collect();
        let out = naive::run(project.path(), &names, cores, limit)?;
        let killed = out.oom_killed();
        naive_note = Some(format!(
            "naive: memory cgroup limit {}; OOM-killed: {} (cgroup reports OOM: {}); a real naive runner would need them rerun",
            gib(limit),
            if killed.is_empty() { "none".to_string() } else { killed.join(", ") },
            out.cgroup_oom
        ));
        rows.push(Row {
            what: format!("naive xargs -P {cores} (ignores memory)"),
            makespan: out.wall,
            bound: None,
            ooms: killed.len(),
            not_passed: out.failed(),
        });
    }

    print_table(&rows);
    if let Some(note) = naive_note {
        println!("{note}");
    }
    println!("makespan of a psy run = wall clock of the whole `psy run` process; bound = psy_scheduler::simulate::lower_bound of its measured durations");
    println!("targets: psy ratio <= 1.10, OOMs 0");
    let failed: Vec<_> = psy_runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.exit_code != 0)
        .collect();
    for (i, r) in &failed {
        eprintln!("psy run {} failed: {:?}", i + 1, r.record.summary);
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Refuses to start a hog the host could only back by pushing other processes out.
fn ensure_host_can_spare(hog: u64) -> anyhow::Result<()> {
    let available = memory_available()?;
    ensure!(
        hog + HOST_MARGIN <= available,
        "a memory hog needs {} but only {} is available now (keeping {} for the host); retry later or lower --hog-fraction",
        gib(hog),
        gib(available),
        gib(HOST_MARGIN)
    );
    Ok(())
}

/// Each case with its measured duration in `run` (the sum of its attempts), and with that
/// duration as the expected one if `expected`.
fn jobs(cases: &[Case], run: &PsyRun, expected: bool) -> anyhow::Result<Vec<(Job, Duration)>> {
    let mut measured: HashMap<&str, u64> = HashMap::new();
    for a in &run.attempts {
        *measured.entry(a.test_id.0.as_str()).or_default() += a.duration_ms;
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ms = *measured
                .get(c.name.as_str())
                .with_context(|| format!("the store has no attempt of {}", c.name))?;
            let d = Duration::from_millis(ms);
            let job = Job {
                key: i as u64,
                resources: c.resources.clone(),
                expected: expected.then_some(d),
            };
            Ok((job, d))
        })
        .collect()
}

/// The terms of the lower bound, to show which resource binds.
fn bound_components(capacity: &Capacity, jobs: &[(Job, Duration)]) -> String {
    let longest = jobs
        .iter()
        .map(|(_, d)| d.as_secs_f64())
        .fold(0.0, f64::max);
    let cpu: f64 = jobs
        .iter()
        .map(|(j, d)| f64::from(j.resources.cpu_millis) * d.as_secs_f64())
        .sum();
    let mem: f64 = jobs
        .iter()
        .map(|(j, d)| j.resources.memory_bytes as f64 * d.as_secs_f64())
        .sum();
    let chain: f64 = jobs
        .iter()
        .filter(|(j, _)| 2 * j.resources.memory_bytes > capacity.memory_bytes)
        .map(|(_, d)| d.as_secs_f64())
        .sum();
    format!(
        "longest test {longest:.2}s, cpu-seconds/cpus {:.2}s, memory-seconds/memory {:.2}s, tests over half the memory back to back {chain:.2}s",
        cpu / f64::from(capacity.cpu_millis),
        mem / capacity.memory_bytes as f64
    )
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:44} {:>10} {:>9} {:>7} {:>5} {:>10}",
        "what", "makespan s", "bound s", "ratio", "OOMs", "not passed"
    );
    for r in rows {
        let (bound, ratio) = match r.bound {
            Some(b) => (
                format!("{:.2}", b.as_secs_f64()),
                format!("{:.3}", r.makespan.as_secs_f64() / b.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:44} {:>10.2} {:>9} {:>7} {:>5} {:>10}",
            r.what,
            r.makespan.as_secs_f64(),
            bound,
            ratio,
            r.ooms,
            r.not_passed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psy_model::Resources;

    #[test]
    fn components_name_the_binding_resource() {
        let capacity = Capacity {
            cpu_millis: 2000,
            memory_bytes: 10 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: Default::default(),
        };
        let job = |cpu_millis, memory_bytes| Job {
            key: 0,
            resources: Resources {
                cpu_millis,
                memory_bytes,
                ..Resources::default()
            },
            expected: None,
        };
        let jobs = vec![
            (job(1000, 6 << 30), Duration::from_secs(10)),
            (job(1000, 6 << 30), Duration::from_secs(10)),
            (job(2000, 1 << 30), Duration::from_secs(3)),
        ];
        let text = bound_components(&capacity, &jobs);
        assert!(text.contains("longest test 10.00s"), "{text}");
        assert!(text.contains("cpu-seconds/cpus 13.00s"), "{text}");
        assert!(text.contains("memory-seconds/memory 12.30s"), "{text}");
        assert!(text.contains("back to back 20.00s"), "{text}");
    }
}
