//! `psy show RUN --server`: a server run's jobs, each with its state and latest result;
//! `psy show RUN TEST --server`: one test's latest result and the first lines of its logs.

use super::client::{connect_with, failed};
use super::remote_log;
use crate::cli::ShowArgs;
use crate::exit::usage;
use psy_fleet::FleetClient;
use psy_report::{format, text};
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = connect_with(args.remote.server.as_deref(), args.remote.token.as_deref())?;
    let run = args
        .run
        .as_deref()
        .ok_or_else(|| usage("psy show --server needs a run id (psy runs lists them)"))?;
    if let Some(test) = &args.test {
        return show_test(&client, run, test);
    }
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

/// Lines of each log shown; `psy log` prints the rest.
const HEAD_LINES: usize = 10;

/// One test of a server run: its latest result, and the head of each log its agent uploaded
/// (or the end of its output the report carried, when it uploaded none).
fn show_test(client: &FleetClient, run: &str, test: &str) -> anyhow::Result<ExitCode> {
    let (run_id, job, result) = remote_log::find(client, run, test)?;
    let mut out = std::io::stdout().lock();
    let id = text::escape(test);
    writeln!(
        out,
        "{id}  {} (attempt {} of {}) in {} on agent {}; job {}",
        result.status,
        result.attempt,
        job.max_attempts,
        format::duration(result.duration_ms.max(0) as u64),
        text::escape(&result.agent),
        job.state
    )?;
    if result.logs.is_empty() {
        if let Some(output) = result.output.as_deref().filter(|o| !o.is_empty()) {
            writeln!(out, "\n--- the end of its output, as reported ---")?;
            for line in output.lines().take(HEAD_LINES) {
                writeln!(out, "{}", text::output_line(line))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    for name in result.logs.keys() {
        let bytes = remote_log::fetch(client, &result, name)?.unwrap_or_default();
        let content = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = content.lines().collect();
        writeln!(out, "\n--- {name} ({} bytes) ---", bytes.len())?;
        for line in lines.iter().take(HEAD_LINES) {
            writeln!(out, "{}", text::output_line(line))?;
        }
        if lines.len() > HEAD_LINES {
            let what = match name.as_str() {
                "out" => " --stdout".to_string(),
                "err" => " --stderr".to_string(),
                "scenario.jsonl" => " --timeline".to_string(),
                node => match node.strip_prefix("node.").and_then(|n| n.rsplit_once('.')) {
                    Some((node, "out")) => format!(" --node {node} --stdout"),
                    Some((node, _)) => format!(" --node {node} --stderr"),
                    None => String::new(),
                },
            };
            writeln!(
                out,
                "    ... {} more lines: psy log {id} {run_id} --server{what}",
                lines.len() - HEAD_LINES
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
