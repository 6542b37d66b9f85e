//! `psy bench spawn`: how long a container running `/bin/true` takes from start to exit, with all
//! namespaces and cgroup limits, next to the peers measured in the same run. The series are
//! interleaved (one run of each in turn, each round starting one later) so a noisy neighbour
//! affects them all alike.

use super::stats::Series;
use clap::Args;
use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::net::Shaping;
use psy_sandbox::{Confinement, ContainerSpec, ImageRoot, Sandbox};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// Runs per series.
    #[arg(short = 'n', long, default_value_t = 300)]
    iterations: usize,
}

type Probe<'a> = Box<dyn FnMut(usize) -> anyhow::Result<Duration> + 'a>;

fn command_probe(argv: &'static [&'static str]) -> Option<Probe<'static>> {
    let run = move || -> anyhow::Result<Duration> {
        let t = Instant::now();
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "{argv:?} failed: {status}");
        Ok(t.elapsed())
    };
    // Only peers that work here take part.
    run().ok()?;
    Some(Box::new(move |_| run()))
}

/// `unshare`'s flags for a container of every namespace it can make (the peer of psy's).
pub(crate) const UNSHARE_ALL: [&str; 7] = [
    "--fork",
    "--pid",
    "--mount",
    "--net",
    "--uts",
    "--ipc",
    "--mount-proc",
];

/// A literal fork + execv + waitpid of `/bin/true`, as the reference (and the C
/// `spawnbench` of shared/baselines) measures it.
fn fork_exec_probe() -> Probe<'static> {
    Box::new(|_| {
        let path = c"/bin/true";
        let argv = [path.as_ptr(), std::ptr::null()];
        let t = Instant::now();
        // SAFETY: the child only calls execv and _exit (async-signal-safe) on data made before fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        anyhow::ensure!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let elapsed = t.elapsed();
        anyhow::ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "/bin/true failed"
        );
        Ok(elapsed)
    })
}

/// The shaping of the "with network" row: a veth on the run's bridge, tbf both ways.
const BENCH_SHAPING: Shaping = Shaping {
    egress_bit_per_sec: Some(100_000_000),
    ingress_bit_per_sec: Some(100_000_000),
};

fn container_probe<'a>(
    sandbox: &'a Sandbox,
    dir: &'a Path,
    network: Option<Shaping>,
    tag: &'static str,
    confinement: Confinement,
    image: Option<&'a Path>,
) -> Probe<'a> {
    let limits = CgroupLimits {
        cpu_millis: 1000,
        exclusive_cores: None,
        memory_bytes: 256 << 20,
        pids: 64,
        io: None,
        freezable: false,
    };
    Box::new(move |i| {
        let scratch = dir.join(format!("{tag}{i}"));
        std::fs::create_dir(&scratch)?;
        // An image root: the rootfs as its one layer, a writable layer per container.
        let writable = dir.join(format!("{tag}{i}-rw"));
        let image = match image {
            Some(rootfs) => {
                for sub in ["upper", "work"] {
                    std::fs::create_dir_all(writable.join(sub))?;
                }
                Some(ImageRoot {
                    layers: vec![rootfs.to_path_buf()],
                    upper_dir: writable.join("upper"),
                    work_dir: writable.join("work"),
                    user_xattrs: false,
                    user: None,
                    project_path: None,
                })
            }
            None => None,
        };
        let spec = ContainerSpec {
            argv: vec!["/bin/true".into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: dir.to_path_buf(),
            hostname: "bench".into(),
            tmp_bytes: 16 << 20,
            scratch_dir: scratch.clone(),
            scratch_bytes: None,
            volumes: Vec::new(),
            project_dir: dir.to_path_buf(),
            stdout: File::create("/dev/null")?,
            stderr: File::create("/dev/null")?,
            cgroup_name: format!("{tag}{i}"),
            network,
            privileged: false,
            masked: Vec::new(),
            allow: Default::default(),
            writable: Vec::new(),
            readonly: Vec::new(),
            image,
            join_netns: None,
            hosts_file: None,
            hold: false,
            clock_offset: None,
        };
        sandbox.set_confinement(confinement)?;
        let t = Instant::now();
        let outcome = sandbox.spawn(spec, &limits)?.finish();
        let elapsed = t.elapsed();
        std::fs::remove_dir(&scratch)?;
        if writable.exists() {
            std::fs::remove_dir_all(&writable)?;
        }
        if let Some(e) = outcome.setup_error {
            anyhow::bail!("container failed: {e}");
        }
        anyhow::ensure!(
            outcome.exit.code == Some(0),
            "container exited with {:?}",
            outcome.exit
        );
        Ok(elapsed)
    })
}

/// A root filesystem of Debian's static busybox (`/bin/true` is its applet), or `None`. It has
/// the top directories every distribution's image has, as the mount points of the container's
/// own trees.
fn busybox_rootfs(dir: &Path) -> Option<PathBuf> {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    for top in ["bin", "dev", "etc", "proc", "run", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(top)).ok()?;
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).ok()?;
    std::os::unix::fs::symlink("busybox", bin.join("true")).ok()?;
    Some(rootfs)
}

pub fn run(args: SpawnArgs) -> anyhow::Result<ExitCode> {
    let n = args.iterations.max(1);
    let dir = tempfile::Builder::new()
        .prefix("psy-bench-")
        .tempdir_in(std::env::current_dir()?)?;
    let sandbox = Sandbox::new(&format!("bench{}", std::process::id()))?;
    for w in sandbox.warnings() {
        eprintln!("warning: {w}");
    }
    // The same build with hardening layers taken off, for the cost of each: the same sandbox
    // (one cgroup and network namespace pool), switched before each of those probes.
    let hardened = sandbox.confinement();
    let mut lighter = Vec::new();
    for confinement in [Confinement::DockerCaps, Confinement::Privileged] {
        match sandbox.set_confinement(confinement) {
            Ok(()) if confinement != hardened => lighter.push(confinement),
            Ok(()) => {}
            Err(e) => eprintln!("skipped the {confinement:?} row: {e}"),
        }
    }
    sandbox.set_confinement(hardened)?;
    // Declared before the probes that borrow it.
    let rootfs = busybox_rootfs(dir.path());
    let mut probes: Vec<(&str, Probe<'_>)> = Vec::new();
    probes.push(("fork+exec /bin/true", fork_exec_probe()));
    for confinement in lighter {
        let (name, tag) = match confinement {
            Confinement::DockerCaps => (
                "psy container, own root + seccomp + caps, no user namespace",
                "d",
            ),
            _ => ("psy container, hardening off (privileged view)", "p"),
        };
        probes.push((
            name,
            container_probe(&sandbox, dir.path(), None, tag, confinement, None),
        ));
    }
    probes.push((
        "psy container, hardened (ns + cgroups + own root + userns + seccomp)",
        container_probe(&sandbox, dir.path(), None, "b", hardened, None),
    ));
    probes.push((
        "psy container + own eth0 on a bridge, tbf 100Mbit both ways",
        container_probe(
            &sandbox,
            dir.path(),
            Some(BENCH_SHAPING),
            "n",
            hardened,
            None,
        ),
    ));
    match &rootfs {
        Some(rootfs) => probes.push((
            "psy container, hardened, in an image (busybox rootfs, overlayfs)",
            container_probe(&sandbox, dir.path(), None, "i", hardened, Some(rootfs)),
        )),
        None => eprintln!("skipped the image row: no /bin/busybox (Debian's busybox-static)"),
    }
    let peers: [(&str, &'static [&'static str]); 3] = [
        (
            "posix_spawn /bin/true (std::process::Command)",
            &["/bin/true"],
        ),
        (
            "unshare --fork --pid --mount --net --uts --ipc --mount-proc",
            &[
                "unshare",
                UNSHARE_ALL[0],
                UNSHARE_ALL[1],
                UNSHARE_ALL[2],
                UNSHARE_ALL[3],
                UNSHARE_ALL[4],
                UNSHARE_ALL[5],
                UNSHARE_ALL[6],
                "true",
            ],
        ),
        (
            "bwrap --unshare-all, ro root, /proc, /dev",
            &[
                "bwrap",
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--unshare-all",
                "true",
            ],
        ),
    ];
    for (name, argv) in peers {
        match command_probe(argv) {
            Some(p) => probes.push((name, p)),
            None => eprintln!("skipped {name}: not installed or not usable here"),
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); probes.len()];
    // Each round starts one probe later, so that no series always follows the same one (the
    // kernel's asynchronous tear-down of a peer's namespaces lands on whatever runs next).
    let k = probes.len();
    for i in 0..n {
        for j in 0..k {
            let at = (i + j) % k;
            samples[at].push((probes[at].1)(i)?);
        }
    }
    sandbox.close();
    let series: Vec<Series> = probes
        .iter()
        .zip(samples)
        .map(|((name, _), s)| Series::new(*name, s))
        .collect();
    println!("{n} runs each, interleaved");
    println!("{}", Series::header());
    for s in &series {
        println!("{}", s.row());
    }
    let ms = |s: &Series| s.median.as_secs_f64() * 1000.0;
    let find = |prefix: &str| series.iter().find(|s| s.name.starts_with(prefix));
    let fork_exec = &series[0];
    let ours = find("psy container, hardened").unwrap_or(&series[1]);
    println!(
        "hardened psy container median / fork+exec median = {:.2}x (target <= 2x)",
        ms(ours) / ms(fork_exec)
    );
    let own_root = find("psy container, own root");
    let off = find("psy container, hardening off");
    if let (Some(own_root), Some(off)) = (own_root, off) {
        println!(
            "layer costs (medians): own root + seccomp + caps {:+.3} ms, user namespace {:+.3} ms",
            ms(own_root) - ms(off),
            ms(ours) - ms(own_root)
        );
    }
    if let Some(image) = find("psy container, hardened, in an image") {
        println!(
            "an image root (overlayfs in the image template) adds {:+.2} ms to the median ({:.2}x fork+exec)",
            ms(image) - ms(ours),
            ms(image) / ms(fork_exec)
        );
        println!(
            "image container median / hardened container median = {:.2}x (target <= 1.3x)",
            ms(image) / ms(ours)
        );
    }
    if let Some(net) = find("psy container + own eth0") {
        println!(
            "network (veth + address + shaping) adds {:+.2} ms to the median (target <= 2 ms)",
            ms(net) - ms(ours)
        );
    }
    if let Some(unshare) = series.iter().find(|s| s.name.starts_with("unshare")) {
        println!(
            "psy container median / unshare median = {:.2}x (target < 1x)",
            ours.median.as_secs_f64() / unshare.median.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
