//! `psy run`: run the selected tests, report them, exit 0/1/2.

use super::context::selected_tests_warm;
use crate::cli::{Color, RunArgs};
use crate::exit::{usage, DISK_FULL, INTERRUPTED, TESTS_FAILED};
use anyhow::Context;
use psy_model::bounds::MAX_RETRIES;
use psy_model::MILLI_PER_CPU;
use psy_report::{
    ColorChoice, Fanout, HumanOptions, HumanReporter, OutputSource, Reporter, Verbosity,
};
use psy_runner::engine::{Engine, LocalRun, PrepareError};
use psy_scheduler::Limits;
use std::process::ExitCode;
use std::sync::Arc;

pub(crate) fn run(args: RunArgs, verbosity: Verbosity) -> anyhow::Result<ExitCode> {
    let warm_parents = Arc::new(psy_config::WarmParents::default());
    let (manifest, tests) =
        selected_tests_warm(&args.select, verbosity, Some(Arc::clone(&warm_parents)))?;
    let Some(tests) = super::run_control::narrow(&args.control, args.flaky_fail, &manifest, tests)?
    else {
        return Ok(ExitCode::SUCCESS);
    };
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
    let control = super::run_control::control(
        &args.control,
        args.flaky_fail,
        &manifest,
        &tests,
        args.retries,
    )?;
    let layers = psy_report::LayerView::stderr(verbosity);
    let prepared = Engine::prepare_with(
        LocalRun {
            project_dir: manifest.dir.clone(),
            manifest: manifest.path.clone(),
            host: manifest.host.clone(),
            tests,
            limits: Limits {
                max_jobs: args.jobs,
                cpu_cap_millis,
            },
            retries: args.retries,
            control,
            allow_privileged: args.allow_privileged,
            require_guarantees: args.require_guarantees,
            keep_volumes: args.keep_volumes,
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            warm_parents: Some(warm_parents),
        },
        &layers,
    )
    .map_err(refused)?;
    let tests = prepared.tests();

    let mut reporters = Fanout::new(Vec::new());
    let color = match args.color {
        Color::Auto => ColorChoice::Auto,
        Color::Always => ColorChoice::Always,
        Color::Never => ColorChoice::Never,
    };
    // Reporters that show tests' output read it through the run's log store.
    let output = OutputSource::store(prepared.logs());
    reporters.push(Box::new(HumanReporter::stderr(HumanOptions {
        logs: output.clone(),
        ..super::run_report::human_options(&args, &manifest, color, verbosity)
    })));
    super::run_report::push_machine_reporters(
        &mut reporters,
        args.message_format,
        args.junit.as_deref(),
        tests,
        output,
    );

    let run_id = prepared.run_id().clone();
    let mut report_error = None;
    let outcome = prepared.run(&mut |event| {
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

/// A run the engine would not prepare: the user's to fix (exit 2) or psy's failure (exit 3);
/// strict mode's refusal names the gaps and tests on the lines above its message.
fn refused(err: PrepareError) -> anyhow::Error {
    if let PrepareError::Unenforceable(refusal) = &err {
        for line in refusal.details() {
            eprintln!("{}", psy_report::text::escape(&line));
        }
    }
    if err.is_usage() {
        usage(err)
    } else {
        anyhow::Error::new(err)
    }
}
