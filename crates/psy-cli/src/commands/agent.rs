//! `psy agent`: join a fleet. Arguments, capacity and work dir here; the agent is the
//! psy-agent crate. Exits 0 when stopped by SIGINT/SIGTERM/SIGHUP, 2 when the server refuses
//! its token or an argument is wrong, 3 when psy or the host failed, 4 when the disk holding
//! its work dir filled up.

use crate::exit::{usage, DISK_FULL};
use clap::Args;
use psy_agent::{AgentError, AgentOptions, DEFAULT_HEARTBEAT};
use psy_fleet::{FleetClient, ServerUrl};
use psy_model::MILLI_PER_CPU;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The server: `http://host:port` (also PSY_SERVER).
    #[arg(long, value_name = "URL", env = "PSY_SERVER")]
    server: Option<String>,
    /// The agent's token (`psy server token create --role agent` makes one); PSY_TOKEN keeps
    /// it out of the process list.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PSY_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: Option<String>,
    /// The agent's name in the fleet (unique; registering again under it updates it)
    /// [default: the host name].
    #[arg(long, value_name = "N")]
    name: Option<String>,
    /// Offer this many CPUs (fractional allowed) instead of the whole machine, so several
    /// agents may split one host.
    #[arg(long, value_name = "CPUS")]
    cpus: Option<f64>,
    /// Offer this much memory (e.g. `8GiB`) instead of the whole machine's.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// The agent's own state: its store, logs, scratch areas, volumes and lock, hidden from
    /// tests; one agent per work dir [default: /var/lib/psyduck/agent as root,
    /// ~/.local/share/psyduck/agent otherwise].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// A label jobs may require, `KEY=VALUE` (repeatable); `arch` is set to this machine's
    /// unless given.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Seconds between two heartbeats of a lease (fractional allowed); leases shorter than
    /// three heartbeats are renewed three times per lease.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEARTBEAT.as_secs_f64())]
    heartbeat: f64,
    /// Let tests with `privileged = true` run with host root's powers (reported as errors
    /// without it).
    #[arg(long)]
    allow_privileged: bool,
}

pub(crate) fn agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.as_deref().ok_or_else(|| {
        usage("no server: give --server URL or set PSY_SERVER (e.g. http://psy.example:8470)")
    })?;
    let server = ServerUrl::parse(server).map_err(usage)?;
    let token = args
        .token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            usage(
                "no token: give --token TOKEN or set PSY_TOKEN (`psy server token create \
                 --role agent` makes one)",
            )
        })?;
    if !args.heartbeat.is_finite() || args.heartbeat < 0.1 {
        return Err(usage(format!(
            "--heartbeat {}: at least 0.1 seconds",
            args.heartbeat
        )));
    }
    let capacity = capacity(args.cpus, args.memory.as_deref())?;
    let labels = labels(&args.labels)?;
    let name = match args.name {
        Some(name) if name.trim().is_empty() => return Err(usage("--name: must not be empty")),
        Some(name) => name,
        None => hostname(),
    };
    let work_dir = work_dir(args.work_dir)?;
    let client = FleetClient::new(server, token);
    let options = AgentOptions {
        snapshots: Some(std::sync::Arc::new(psy_fleet::ServerSnapshots(
            client.clone(),
        ))),
        client,
        name,
        capacity,
        labels,
        work_dir,
        heartbeat: Duration::from_secs_f64(args.heartbeat),
        allow_privileged: args.allow_privileged,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    match psy_agent::run(options) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) if e.is_usage() => Err(usage(e)),
        Err(e @ AgentError::DiskFull(_)) => {
            eprintln!("error: {}", psy_report::text::escape(&e.to_string()));
            Ok(ExitCode::from(DISK_FULL))
        }
        Err(e) => Err(e.into()),
    }
}

/// The machine as `psy run` detects it, or the share given (which must fit in it).
fn capacity(cpus: Option<f64>, memory: Option<&str>) -> anyhow::Result<psy_model::Capacity> {
    let mut capacity = psy_runner::capacity::detect(0, 0);
    let calibrated = psy_config::host_file::load(&psy_config::host_file::default_path())
        .map_err(usage)?
        .unwrap_or_default();
    capacity.io = psy_config::host_file::merge_io(&Default::default(), &calibrated.io);
    if let Some(cpus) = cpus {
        let millis = (cpus * f64::from(MILLI_PER_CPU)).round();
        if !cpus.is_finite() || millis < 1.0 {
            return Err(usage(format!("--cpus {cpus}: must be more than 0")));
        }
        if millis > f64::from(capacity.cpu_millis) {
            return Err(usage(format!(
                "--cpus {cpus}: this machine has {}",
                psy_config::format_cpus(capacity.cpu_millis)
            )));
        }
        capacity.cpu_millis = millis as u32;
    }
    if let Some(memory) = memory {
        let bytes =
            psy_config::parse_size(memory).map_err(|e| usage(format!("--memory {memory}: {e}")))?;
        if bytes == 0 {
            return Err(usage(format!("--memory {memory}: must be more than 0")));
        }
        if bytes > capacity.memory_bytes {
            return Err(usage(format!(
                "--memory {memory}: this machine has {}",
                psy_config::format_size(capacity.memory_bytes)
            )));
        }
        capacity.memory_bytes = bytes;
    }
    Ok(capacity)
}

/// `KEY=VALUE` labels, with `arch` of this machine unless given.
fn labels(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for label in given {
        let Some((key, value)) = label.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(usage(format!("--label {label:?}: expected KEY=VALUE")));
        };
        labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    labels
        .entry("arch".to_string())
        .or_insert_with(|| std::env::consts::ARCH.to_string());
    Ok(labels)
}

/// The work dir given (made absolute), or the default for this user; created.
fn work_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir,
        None => default_work_dir()?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| usage(format!("--work-dir {}: {e}", dir.display())))?;
    std::fs::canonicalize(&dir).map_err(|e| usage(format!("--work-dir {}: {e}", dir.display())))
}

fn default_work_dir() -> anyhow::Result<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from("/var/lib/psyduck/agent"));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| usage("no --work-dir, and no HOME to put one in"))?;
    Ok(data.join("psyduck/agent"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "psy-agent".to_string())
}
