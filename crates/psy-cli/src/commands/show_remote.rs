//! `psy show RUN --server`: a server run's jobs, each with its state and latest result.

use super::client::{connect_with, failed};
use crate::cli::ShowArgs;
use crate::exit::usage;
use psy_report::{format, text};
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = connect_with(args.server.as_deref(), args.token.as_deref())?;
    let run = args
        .run
        .as_deref()
        .ok_or_else(|| usage("psy show --server needs a run id (psy runs lists them)"))?;
    let run_id: i64 = run
        .parse()
        .map_err(|_| usage(format!("run {run:?}: a server run id is a number")))?;
    let detail = client.run(run_id).map_err(failed)?;
    let mut out = std::io::stdout().lock();
    let r = &detail.run;
    writeln!(
        out,
        "run {} ({}): {}, {} of {} jobs done, {} running, {} queued, {} cancelled; submitted by {} at {}",
        r.run_id,
        text::escape(r.name.as_deref().unwrap_or("-")),
        r.state,
        r.jobs.done,
        r.jobs.total,
        r.jobs.leased,
        r.jobs.queued,
        r.jobs.cancelled,
        text::escape(&r.submitter),
        r.created_at
    )?;
    let (header, ids) = text::column("TEST", detail.jobs.iter().map(|j| j.test_id.as_str()));
    writeln!(
        out,
        "{header}  {:<9}  {:<8}  {:>7}  {:>9}  AGENT",
        "STATE", "RESULT", "ATTEMPT", "DURATION"
    )?;
    for (job, id) in detail.jobs.iter().zip(ids) {
        let (status, duration, agent) = match &job.result {
            Some(r) => (
                r.status.as_str(),
                format::duration(r.duration_ms.max(0) as u64),
                text::escape(&r.agent).into_owned(),
            ),
            None => ("-", "-".to_string(), "-".to_string()),
        };
        writeln!(
            out,
            "{id}  {:<9}  {:<8}  {:>7}  {:>9}  {agent}",
            job.state,
            status,
            format!("{}/{}", job.attempt, job.max_attempts),
            duration
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
