//! `psy runs` and `psy cancel RUN`: the server's runs, and stopping one.

use super::client::{connect, failed};
use crate::cli::{CancelArgs, ServerArgs};
use psy_report::text;
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn list(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args)?;
    let runs = client.runs().map_err(failed)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>6}  {:<9}  {:>6}  {:>6}  {:>6}  {:>6}  {:<20}  {:<12}  NAME",
        "RUN", "STATE", "TESTS", "DONE", "LEASED", "QUEUED", "CREATED", "SUBMITTER"
    )?;
    for run in &runs {
        writeln!(
            out,
            "{:>6}  {:<9}  {:>6}  {:>6}  {:>6}  {:>6}  {:<20}  {:<12}  {}",
            run.run_id,
            run.state,
            run.jobs.total,
            run.jobs.done,
            run.jobs.leased,
            run.jobs.queued,
            run.created_at.get(..19).unwrap_or(&run.created_at),
            text::escape(&run.submitter),
            text::escape(run.name.as_deref().unwrap_or("-")),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.server)?;
    let cancelled = client.cancel_run(args.run).map_err(failed)?;
    println!(
        "run {}: cancelled {} queued or running job(s)",
        cancelled.run_id, cancelled.cancelled_jobs
    );
    Ok(ExitCode::SUCCESS)
}
