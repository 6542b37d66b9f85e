//! `psy bench spawn`: how long a container running `/bin/true` takes from start to exit, with all
//! namespaces and cgroup limits, next to the peers measured in the same run.

use super::stats::Series;
use clap::Args;
use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::{ContainerSpec, Sandbox};
use std::fs::File;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(crate) struct SpawnArgs {
    /// Runs per series.
    #[arg(short = 'n', long, default_value_t = 200)]
    iterations: usize,
}

fn time_command(argv: &[&str], n: usize) -> Option<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        samples.push(t.elapsed());
    }
    Some(samples)
}

fn time_container(n: usize) -> anyhow::Result<Vec<Duration>> {
    let dir = tempfile::Builder::new()
        .prefix("psy-bench-")
        .tempdir_in(std::env::current_dir()?)?;
    let sandbox = Sandbox::new(&format!("bench{}", std::process::id()))?;
    for w in sandbox.warnings() {
        eprintln!("warning: {w}");
    }
    let limits = CgroupLimits {
        cpu_millis: 1000,
        exclusive_cores: None,
        memory_bytes: 256 << 20,
        pids: 64,
    };
    let mut samples = Vec::with_capacity(n);
    let env: Vec<(String, String)> = vec![("PATH".into(), "/usr/bin:/bin".into())];
    for i in 0..n {
        let scratch = dir.path().join(format!("s{i}"));
        std::fs::create_dir(&scratch)?;
        let spec = ContainerSpec {
            argv: vec!["/bin/true".into()],
            env: env.clone(),
            cwd: dir.path().to_path_buf(),
            hostname: "bench".into(),
            tmp_bytes: 16 << 20,
            scratch_dir: scratch,
            project_dir: dir.path().to_path_buf(),
            stdout: File::create("/dev/null")?,
            stderr: File::create("/dev/null")?,
            cgroup_name: format!("b{i}"),
        };
        let t = Instant::now();
        let outcome = sandbox.spawn(spec, &limits)?.finish();
        samples.push(t.elapsed());
        if let Some(e) = outcome.setup_error {
            anyhow::bail!("container failed: {e}");
        }
        anyhow::ensure!(
            outcome.exit.code == Some(0),
            "container exited with {:?}",
            outcome.exit
        );
    }
    sandbox.close();
    Ok(samples)
}

pub(crate) fn run(args: SpawnArgs) -> anyhow::Result<ExitCode> {
    let n = args.iterations.max(1);
    let mut series = Vec::new();
    // Interleave warm-up so every series starts with hot caches.
    let _ = time_command(&["/bin/true"], 20);
    let fork_exec = Series::new(
        "fork+exec /bin/true",
        time_command(&["/bin/true"], n).expect("/bin/true runs"),
    );
    series.push(fork_exec.clone());
    let ours = Series::new(
        "psy container (5 namespaces + cgroups + mounts)",
        time_container(n)?,
    );
    series.push(ours.clone());
    let peers: [(&str, &[&str]); 3] = [
        ("unshare --fork --pid --mount --net --uts --ipc --mount-proc", &["unshare", "--fork", "--pid", "--mount", "--net", "--uts", "--ipc", "--mount-proc", "true"]),
        ("bwrap (ro root, new pid/net/ipc/uts)", &["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "true"]),
        ("crun (see shared/baselines)", &["sh", "-c", "test -n \"$PSY_BENCH_CRUN_BUNDLE\" && crun run -b \"$PSY_BENCH_CRUN_BUNDLE\" psy-bench-$$"]),
    ];
    for (name, argv) in peers {
        match time_command(argv, n) {
            Some(s) => series.push(Series::new(name, s)),
            None => eprintln!("skipped {name}: not installed or not usable here"),
        }
    }
    println!("{}", Series::header());
    for s in &series {
        println!("{}", s.row());
    }
    let ratio = ours.median.as_secs_f64() / fork_exec.median.as_secs_f64();
    println!("psy container median / fork+exec median = {ratio:.2}x (target <= 3x)");
    Ok(ExitCode::SUCCESS)
}
