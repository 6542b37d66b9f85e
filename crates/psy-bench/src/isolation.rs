//! `psy bench isolation`: does a test keep its speed beside aggressive neighbours? Each victim
//! (CPU-bound, then fsync-bound disk writes) runs R repetitions alone, beside bare host-process
//! hogs, and inside one `psy run` beside the same hogs given guarantees (exclusive core for the
//! victim, throttled disk for the hogs). A network victim (round trips to a server) runs alone,
//! beside a bulk sender on the same link, and with both shaped (`isolation_net.rs`). The victim
//! times itself, so process and container start-up never count.

use super::harness::{median, run_psy, Project};
use anyhow::{ensure, Context};
use clap::Args;
use psy_model::AttemptResult;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct IsolationArgs {
    /// Repetitions of each victim per condition.
    #[arg(short = 'r', long, default_value_t = 10)]
    reps: usize,
    /// Where to create the scratch project (default: the current directory, so the disk hog and
    /// the disk victim share a disk).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Which victims to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [VictimKind::Cpu, VictimKind::Disk, VictimKind::Net])]
    victims: Vec<VictimKind>,
}

/// A victim the user can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VictimKind {
    /// A CPU-bound loop beside CPU hogs (exclusive core).
    Cpu,
    /// Disk reads and writes beside a disk hog (IO throttle).
    Disk,
    /// Round trips to a server beside a bulk sender on the same link (network shaping).
    Net,
}

/// Python with its absolute path: containers get a fixed PATH, and pyenv shims live under /root.
const PYTHON: &str = "/usr/bin/python3";
/// Iterations of the CPU victim's loop: about 350 ms of one core here.
const CPU_LOOP: u64 = 5_000_000;
/// Seconds the victim waits before its first repetition so its neighbours are already running.
const SETTLE_S: f64 = 1.0;

/// Times `reps` repetitions of one victim, printing `rep <ms>` per repetition. Args: kind
/// (`cpu`/`disk`), reps, directory (`-` for `$PSY_SCRATCH`), settle seconds, loop count.
const VICTIM_PY: &str = r#"import os, sys, time
kind, reps, d, settle, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
if d == "-":
    d = os.environ["PSY_SCRATCH"]
time.sleep(settle)
buf = b"\xa5" * (1 << 20)
for i in range(reps):
    t = time.perf_counter()
    if kind == "cpu":
        x = 0
        for j in range(n):
            x += j * j
    else:
        p = os.path.join(d, "victim.bin")
        with open(p, "wb") as f:
            for _ in range(16):
                f.write(buf)
                f.flush()
                os.fsync(f.fileno())
        os.unlink(p)
    print("rep %.3f" % ((time.perf_counter() - t) * 1e3), flush=True)
"#;

const CPU_HOG: &str = "while :; do :; done";

/// The disk hogs: direct writes, and plain buffered writes (no fsync) whose background
/// writeback is what stalls other writers on a shared disk.
const DISK_HOGS: [(&str, bool); 2] = [("disk-hog-direct", true), ("disk-hog-buffered", false)];

/// Writes over one 2 GiB file, again and again, direct or buffered.
fn disk_hog(dir: &str, direct: bool) -> String {
    let (file, flag) = if direct {
        ("hog-direct.bin", " oflag=direct")
    } else {
        ("hog-buffered.bin", "")
    };
    format!(
        "while :; do dd if=/dev/zero of=\"{dir}/{file}\" bs=1M count=2048{flag} conv=notrunc status=none; done"
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Victim {
    Cpu,
    Disk,
}

impl Victim {
    fn name(self) -> &'static str {
        match self {
            Victim::Cpu => "cpu",
            Victim::Disk => "disk",
        }
    }

    fn argv(self, script: &Path, reps: usize, dir: &str) -> Vec<String> {
        vec![
            PYTHON.into(),
            script.display().to_string(),
            self.name().into(),
            reps.to_string(),
            dir.into(),
            SETTLE_S.to_string(),
            CPU_LOOP.to_string(),
        ]
    }
}

/// Host-process hogs, each in its own process group; the whole groups are killed on drop, so
/// they never outlive the bench, whatever fails.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(disk_dir: &Path) -> anyhow::Result<Self> {
        let mut hogs = Hogs(Vec::new());
        let dir = disk_dir.display().to_string();
        let disk = DISK_HOGS.map(|(_, direct)| disk_hog(&dir, direct));
        for script in [CPU_HOG.to_string(), CPU_HOG.to_string()]
            .into_iter()
            .chain(disk)
        {
            let child = Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting the hog `sh -c '{script}'`"))?;
            hogs.0.push(child);
        }
        Ok(hogs)
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signalling the process group we created for this child.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait();
        }
    }
}

pub(super) fn parse_reps(text: &str, what: &str) -> anyhow::Result<Vec<f64>> {
    let reps: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("rep "))
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{what}: unparsable `rep` line in:\n{text}"))?;
    ensure!(!reps.is_empty(), "{what}: no `rep` lines in:\n{text}");
    Ok(reps)
}

/// The victim as a bare host process (its own timings, from its stdout).
fn host_victim(victim: Victim, script: &Path, reps: usize, dir: &Path) -> anyhow::Result<Vec<f64>> {
    let argv = victim.argv(script, reps, &dir.display().to_string());
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {argv:?}"))?;
    ensure!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_reps(&String::from_utf8_lossy(&out.stdout), victim.name())
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn toml_argv(argv: &[String]) -> String {
    let items: Vec<String> = argv.iter().map(|a| toml_str(a)).collect();
    format!("[{}]", items.join(", "))
}

/// One suite: the victim on a whole (exclusive) core and, with `hog_s`, neighbours that run for
/// that many seconds: two busy loops sharing the other core, and two disk hogs (direct and
/// buffered writes) each throttled to 25 MiB/s and 100 IOPS. With 2 cores the loops get 0.9 and
/// each disk hog 0.05 of the second core, as more whole cores do not exist.
fn manifest(victim: Victim, script: &Path, reps: usize, hog_s: Option<u64>) -> String {
    let mut s = String::from(
        "# psy bench isolation\n[host]\ncpu-policy = \"exclusive\"\nreserve-cpus = 0\n\n\
         [defaults]\nretries = 0\ntimeout = \"5m\"\nmemory = \"256MiB\"\n",
    );
    let _ = write!(
        s,
        "\n[[test]]\nname = \"victim\"\ncpus = 1\ncommand = {}\n",
        toml_argv(&victim.argv(script, reps, "-"))
    );
    if let Some(d) = hog_s {
        let cpu =
            format!("timeout {d} sh -c '{CPU_HOG}' & timeout {d} sh -c '{CPU_HOG}'; wait; exit 0");
        let _ = write!(
            s,
            "\n[[test]]\nname = \"cpu-hog\"\ncpus = 0.9\ncommand = {}\n",
            toml_argv(&["sh".into(), "-c".into(), cpu])
        );
        for (name, direct) in DISK_HOGS {
            let disk = format!(
                "timeout {d} sh -c '{}'; exit 0",
                disk_hog("$PSY_SCRATCH", direct)
            );
            let _ = write!(
                s,
                "\n[[test]]\nname = \"{name}\"\ncpus = 0.05\nio = {{ write-bps = \"25MiB\", write-iops = 100 }}\ncommand = {}\n",
                toml_argv(&["sh".into(), "-c".into(), disk])
            );
        }
    }
    s
}

fn end_ms(a: &AttemptResult) -> u64 {
    a.started_at_ms + a.duration_ms
}

/// The victim's timings from one `psy run`, after checking the neighbours overlapped its series.
fn psy_victim(
    project: &Project,
    victim: Victim,
    script: &Path,
    reps: usize,
    hog_s: Option<u64>,
) -> anyhow::Result<Vec<f64>> {
    project.write_manifest(&manifest(victim, script, reps, hog_s))?;
    let label = format!(
        "{}-{}",
        victim.name(),
        if hog_s.is_some() { "noisy" } else { "alone" }
    );
    let run = run_psy(project, &label)?;
    let find = |name: &str| run.attempts.iter().find(|a| a.test_id.to_string() == name);
    let v = find("victim").with_context(|| format!("`psy run` ({label}) has no victim attempt"))?;
    let out = if v.stdout_path.is_absolute() {
        v.stdout_path.clone()
    } else {
        project.path().join(&v.stdout_path)
    };
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    ensure!(
        run.exit_code == 0,
        "`psy run` ({label}) exited with {}: {:?}",
        run.exit_code,
        run.record.summary
    );
    if hog_s.is_some() {
        let first_rep = v.started_at_ms + (SETTLE_S * 1e3) as u64;
        for hog in std::iter::once("cpu-hog").chain(DISK_HOGS.map(|(name, _)| name)) {
            let h = find(hog).with_context(|| format!("`psy run` ({label}) has no {hog}"))?;
            if h.started_at_ms > first_rep || end_ms(h) < end_ms(v) {
                eprintln!(
                    "warning: {label}: {hog} ran {}..{} ms, not covering the victim's series {first_rep}..{} ms",
                    h.started_at_ms,
                    end_ms(h),
                    end_ms(v)
                );
            }
        }
        for (name, _) in DISK_HOGS {
            if let Some(h) = find(name) {
                let mib = h.io_write_bytes.unwrap_or(0) as f64 / f64::from(1u32 << 20);
                let secs = h.duration_ms.max(1) as f64 / 1e3;
                println!(
                    "  {label}: {name} wrote {mib:.0} MiB in {secs:.1} s = {:.1} MiB/s (throttle 25 MiB/s; cgroup count)",
                    mib / secs
                );
            }
        }
    }
    parse_reps(&text, &label)
}

/// Median, p99 (nearest rank), max and coefficient of variation of one series, in ms.
struct Stats {
    median: f64,
    p99: f64,
    max: f64,
    cv: f64,
}

impl Stats {
    fn new(v: &[f64]) -> Self {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let rank = ((0.99 * n).ceil() as usize).clamp(1, s.len());
        Stats {
            median: median(&s),
            p99: s[rank - 1],
            max: s[s.len() - 1],
            cv: var.sqrt() / mean,
        }
    }
}

pub fn run(args: IsolationArgs) -> anyhow::Result<ExitCode> {
    let reps = args.reps.max(1);
    let project = Project::create(args.dir.as_deref())?;
    project.write("victim.py", VICTIM_PY)?;
    let script = project.path().join("victim.py");
    let host_dir = project.path().join("host");
    std::fs::create_dir_all(&host_dir)
        .with_context(|| format!("creating {}", host_dir.display()))?;
    println!("psy bench isolation: {reps} repetitions per victim and condition");
    println!(
        "  victims: cpu = python loop of {CPU_LOOP} iterations; disk = 16 x (1 MiB write + fsync)"
    );
    println!(
        "  neighbours: 2 x `sh -c '{CPU_HOG}'` + `{}` + `{}`",
        disk_hog("<dir>", true),
        disk_hog("<dir>", false)
    );
    println!("  guaranteed: cpu-policy exclusive, victim cpus 1, busy loops cpus 0.9, each disk hog cpus 0.05 + io write-bps 25MiB write-iops 100 (on cgroup v1: a sync-mounted scratch filesystem of its own, throttled at its loop device)");
    println!("  {}", super::isolation_net::describe());
    println!("  project: {}", project.path().display());

    let mut rows = Vec::new();
    let selected = [
        (VictimKind::Cpu, Victim::Cpu),
        (VictimKind::Disk, Victim::Disk),
    ]
    .into_iter()
    .filter(|(kind, _)| args.victims.contains(kind))
    .map(|(_, victim)| victim);
    for victim in selected {
        let alone = host_victim(victim, &script, reps, &host_dir)?;
        let series_s = alone.iter().sum::<f64>() / 1e3;
        let unconstrained = {
            let _hogs = Hogs::start(&host_dir)?;
            std::thread::sleep(Duration::from_millis(200));
            host_victim(victim, &script, reps, &host_dir)?
        };
        for file in ["hog-direct.bin", "hog-buffered.bin"] {
            let _ = std::fs::remove_file(host_dir.join(file));
        }
        let alone_psy = psy_victim(&project, victim, &script, reps, None)?;
        // Long enough for the victim's series even if it were 4x slower, plus start-up.
        let hog_s = (SETTLE_S + 4.0 * series_s + 5.0).ceil() as u64;
        let guaranteed = psy_victim(&project, victim, &script, reps, Some(hog_s))?;
        rows.push((victim.name(), "alone (host process)", alone));
        rows.push((victim.name(), "noisy, unconstrained (host)", unconstrained));
        rows.push((victim.name(), "alone (psy run)", alone_psy));
        rows.push((victim.name(), "noisy, guaranteed (psy run)", guaranteed));
    }
    if args.victims.contains(&VictimKind::Net) {
        use super::isolation_net::{victim_series, NetCondition};
        let alone = victim_series(PYTHON, reps, NetCondition::Alone)?;
        let unconstrained = victim_series(PYTHON, reps, NetCondition::Unconstrained)?;
        let alone_shaped = victim_series(PYTHON, reps, NetCondition::AloneShaped)?;
        let guaranteed = victim_series(PYTHON, reps, NetCondition::Guaranteed)?;
        rows.push(("net", "alone (unshaped)", alone));
        rows.push(("net", "noisy, unconstrained", unconstrained));
        rows.push(("net", "alone (shaped)", alone_shaped));
        rows.push(("net", "noisy, guaranteed (shaped)", guaranteed));
    }

    println!();
    println!(
        "{:6} {:30} {:>10} {:>10} {:>10} {:>7} {:>12}",
        "victim", "condition", "median ms", "p99 ms", "max ms", "cv %", "p99/alone"
    );
    // Each launcher is compared with its own alone series: a psy victim with a host one would
    // mix python start-up placement and container effects into the interference.
    for pair in rows.chunks(2) {
        let alone_p99 = Stats::new(&pair[0].2).p99;
        for (victim, cond, samples) in pair {
            let st = Stats::new(samples);
            println!(
                "{:6} {:30} {:>10.1} {:>10.1} {:>10.1} {:>7.1} {:>12.2}",
                victim,
                cond,
                st.median,
                st.p99,
                st.max,
                st.cv * 100.0,
                st.p99 / alone_p99
            );
        }
    }
    println!("\np99 = nearest rank (= max for fewer than 100 repetitions); p99/alone against the alone series of the same launcher (host or psy run); target with guarantees <= 1.25");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_gives_victim_a_core_and_throttles_the_disk_hog() {
        let text = manifest(Victim::Disk, Path::new("/p/victim.py"), 3, Some(20));
        let dir = Path::new("/");
        let parsed = psy_config::parse(&dir.join("psyduck.toml"), dir, &text);
        let tests = parsed.unwrap().expand(&[]).unwrap();
        assert_eq!(tests.len(), 4);
        assert_eq!(tests[0].resources.cpu_millis, 1000);
        assert_eq!(tests[0].command[2], "disk");
        for hog in &tests[2..] {
            assert_eq!(hog.resources.cpu_millis, 50);
            assert!(hog.command[2].contains("timeout 20"));
            assert_eq!(hog.resources.io.as_ref().unwrap().write_bps, Some(25 << 20));
        }
        assert!(
            tests[3].command[2].contains("hog-buffered.bin")
                && !tests[3].command[2].contains("oflag")
        );
    }

    #[test]
    fn stats_and_rep_parsing() {
        let reps = parse_reps("hello\nrep 10.0\nrep 30.5\nrep 20\n", "t").unwrap();
        assert_eq!(reps, vec![10.0, 30.5, 20.0]);
        let st = Stats::new(&reps);
        assert_eq!((st.median, st.p99, st.max), (20.0, 30.5, 30.5));
        assert!(parse_reps("nothing", "t").is_err());
    }
}
