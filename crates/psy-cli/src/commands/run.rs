//! `psy run`: run the selected tests, report them, exit 0/1/2.

use super::context::{open_store, selected_tests};
use super::guarantees;
use crate::cli::{Color, MessageFormat, RunArgs};
use crate::exit::{usage, DISK_FULL, INTERRUPTED, TESTS_FAILED};
use anyhow::Context;
use psy_model::bounds::MAX_RETRIES;
use psy_model::{RunId, MILLI_PER_CPU};
use psy_report::{
    ColorChoice, Fanout, HumanReporter, JsonReporter, JunitOptions, JunitReporter, Reporter,
    Verbosity,
};
use psy_runner::executor::ContainerExecutor;
use psy_runner::layout::StateDir;
use psy_runner::{capacity, RunSettings};
use psy_sandbox::Sandbox;
use psy_scheduler::Limits;
use std::process::ExitCode;

pub(crate) fn run(args: RunArgs, verbosity: Verbosity) -> anyhow::Result<ExitCode> {
    let (manifest, tests) = selected_tests(&args.select, verbosity)?;
    let Some(tests) = super::run_control::narrow(&args.control, args.flaky_fail, &manifest, tests)?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let host = &manifest.host;
    if let Some(rootfs) = &host.rootfs {
        return Err(usage(format!(
            "{}: host.rootfs = {:?}: a separate root filesystem is not supported yet; remove the key to run on the host root (read-only)",
            manifest.path.display(),
            rootfs
        )));
    }
    let mut capacity = capacity::detect(host.reserve_cpu_millis, host.reserve_memory_bytes);
    let host_file = psy_config::host_file::default_path();
    let calibrated = psy_config::host_file::load(&host_file).map_err(usage)?;
    capacity.io = psy_config::host_file::merge_io(&host.io, &calibrated.unwrap_or_default());
    capacity.network = host.network;
    psy_config::check_fits(&tests, &capacity).map_err(usage)?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    psy_config::check_privileges(&tests, root).map_err(usage)?;
    let cpu_cap_millis = match args.cpus {
        Some(c) if c.is_nan() || c <= 0.0 => {
            return Err(usage(format!("--cpus {c}: must be more than 0")))
        }
        Some(c) => Some((c * f64::from(MILLI_PER_CPU)).round() as u32),
        None => None,
    };
    if let Some(n) = args.retries.filter(|&n| n > MAX_RETRIES) {
        return Err(usage(format!("--retries {n}: at most {MAX_RETRIES}")));
    }
    if args.jobs == Some(0) {
        return Err(usage("--jobs 0: must be at least 1"));
    }
    check_writable(&tests, &StateDir::new(&manifest.dir))?;
    let control = super::run_control::control(
        &args.control,
        args.flaky_fail,
        &manifest,
        &tests,
        args.retries,
    )?;
    let privileged: Vec<String> = tests
        .iter()
        .filter(|t| t.sandbox.privileged)
        .map(|t| format!("{} ({})", t.id, t.origin))
        .collect();
    if !privileged.is_empty() && !args.allow_privileged {
        return Err(usage(format!(
            "{} test{} ask{} for `privileged = true` (host root's powers, no sandbox hardening): {}; \
             run with --allow-privileged to let them, or remove the key",
            privileged.len(),
            if privileged.len() == 1 { "" } else { "s" },
            if privileged.len() == 1 { "s" } else { "" },
            privileged.join(", ")
        )));
    }

    let state = StateDir::new(&manifest.dir);
    let _lock = state
        .try_lock()
        .with_context(|| format!("locking {}", state.root().display()))?
        .ok_or_else(|| {
            usage(format!(
                "another psy is running in {} (one run per project at a time)",
                manifest.dir.display()
            ))
        })?;
    let mut store = open_store(&state)?;
    super::gc::collect(&state, &mut store)?;

    let run_id = new_run_id();
    let sandbox = Sandbox::new(run_id.as_str()).context("preparing the sandbox")?;
    let gaps = guarantees::find(&sandbox.guarantees(state.root()), &tests, host.cpu_policy);
    if !gaps.is_empty() && (args.require_guarantees || host.require_guarantees) {
        sandbox.close();
        let refusal = guarantees::Unenforceable(gaps);
        for line in refusal.details() {
            eprintln!("{}", psy_report::text::escape(&line));
        }
        return Err(usage(refusal));
    }
    let mut executor = ContainerExecutor::new(
        sandbox,
        host.cpu_policy,
        state.run_volumes(&run_id),
        args.keep_volumes,
    );
    // At most as many shaped attempts run at once as fit the smallest CPU request on the machine.
    let min_cpu = tests
        .iter()
        .map(|t| t.resources.cpu_millis.max(1))
        .min()
        .unwrap_or(1);
    executor.expect_networks(&tests, (capacity.cpu_millis / min_cpu).max(1) as usize);

    let mut reporters = Fanout::new(Vec::new());
    let color = match args.color {
        Color::Auto => ColorChoice::Auto,
        Color::Always => ColorChoice::Always,
        Color::Never => ColorChoice::Never,
    };
    reporters.push(Box::new(HumanReporter::stderr(
        super::run_report::human_options(&args, &manifest, color, verbosity),
    )));
    if args.message_format == MessageFormat::Json {
        reporters.push(Box::new(JsonReporter::new(std::io::stdout())));
    }
    if let Some(path) = &args.junit {
        reporters.push(Box::new(JunitReporter::new(
            path,
            JunitOptions {
                suite_name: Some("psyduck".into()),
                classnames: tests
                    .iter()
                    .filter_map(|t| Some((t.id.clone(), t.group.clone()?)))
                    .collect(),
                ..JunitOptions::default()
            },
        )));
    }

    let settings = RunSettings {
        run_id,
        project_dir: manifest.dir.clone(),
        state,
        tests,
        capacity,
        cpu_policy: host.cpu_policy,
        limits: Limits {
            max_jobs: args.jobs,
            cpu_cap_millis,
        },
        retries: args.retries,
        manifest: manifest.path.display().to_string(),
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        warnings: guarantees::warnings(&gaps),
        control,
    };
    let run_id = settings.run_id.clone();
    let mut report_error = None;
    let outcome = psy_runner::run(settings, &mut store, &mut executor, &mut |event| {
        if let Err(e) = reporters.on_event(event) {
            report_error.get_or_insert(e);
        }
    })?;
    reporters.finish().context("finishing the reports")?;
    if let Some(e) = report_error {
        return Err(anyhow::Error::new(e).context("writing the reports"));
    }
    if let Some(reason) = outcome.disk_full {
        eprintln!(
            "error: {}; the run stopped early (every finished result is recorded: psy show)",
            psy_report::text::escape(&reason)
        );
        return Ok(ExitCode::from(DISK_FULL));
    }
    if outcome.interrupted {
        let s = &outcome.summary;
        eprintln!(
            "interrupted: {} of {} tests finished (results kept: psy show {run_id})",
            s.total - s.not_run,
            s.total
        );
        return Ok(ExitCode::from(INTERRUPTED));
    }
    Ok(if outcome.summary.failures(args.flaky_fail) > 0 {
        ExitCode::from(TESTS_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every `writable` and `readonly` directory exists, neither holds nor lies in psy's state (also
/// through a symbolic link) and fits the per-test limit; checked before anything runs so that
/// a typo fails the run (exit 2), not every attempt.
fn check_writable(tests: &[psy_model::TestSpec], state: &StateDir) -> anyhow::Result<()> {
    let state_root = std::fs::canonicalize(state.root()).unwrap_or(state.root().to_path_buf());
    for test in tests {
        let lists = [
            ("writable", &test.sandbox.writable),
            ("readonly", &test.sandbox.readonly),
        ];
        for (key, dirs) in lists {
            if dirs.len() > psy_sandbox::MAX_WRITABLE {
                return Err(usage(format!(
                    "test `{}` ({}): {key} lists {} directories, at most {}",
                    test.id,
                    test.origin,
                    dirs.len(),
                    psy_sandbox::MAX_WRITABLE
                )));
            }
            for dir in dirs {
                let real = std::fs::canonicalize(dir).ok().filter(|d| d.is_dir());
                let problem = match real {
                    None => Some("is not an existing directory"),
                    Some(d) if d.starts_with(&state_root) || state_root.starts_with(&d) => {
                        Some("holds psy's state (.psyduck), which tests never see")
                    }
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    return Err(usage(format!(
                        "test `{}` ({}): {key} = {}: {problem}",
                        test.id,
                        test.origin,
                        dir.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by start time, unique enough for one project.
fn new_run_id() -> RunId {
    let ([year, month, day, hour, minute, second], now) = psy_runner::clock::utc_now();
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    RunId(format!(
        "{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}-{salt:04x}"
    ))
}
