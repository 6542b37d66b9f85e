//! `psy log TEST RUN --server` and the logs part of `psy show RUN TEST --server`: a server
//! run's test, its latest attempt, and the log blobs its agent uploaded (stdout `out`, stderr
//! `err`, a scenario's timeline `scenario.jsonl` and nodes' `node.NAME.out`/`.err`).

use super::client::{connect_with, failed};
use crate::cli::LogArgs;
use crate::exit::usage;
use psy_fleet::{FleetClient, JobResult, JobView};
use std::io::Write;
use std::process::ExitCode;

/// Test `test` of server run `run` (its id as given), and its latest result.
pub(crate) fn find(
    client: &FleetClient,
    run: &str,
    test: &str,
) -> anyhow::Result<(i64, JobView, JobResult)> {
    let run_id: i64 = run
        .parse()
        .map_err(|_| usage(format!("run {run:?}: a server run id is a number")))?;
    let detail = client.run(run_id).map_err(failed)?;
    let job = detail
        .jobs
        .into_iter()
        .find(|j| j.test_id == test)
        .ok_or_else(|| usage(format!("run {run_id} has no test {test:?}")))?;
    let result = job.result.clone().ok_or_else(|| {
        usage(format!(
            "test {test:?} of run {run_id} has no result yet (it is {})",
            job.state
        ))
    })?;
    Ok((run_id, job, result))
}

/// The content of log `name` of `result`: `None` when its agent uploaded none of that name.
pub(crate) fn fetch(
    client: &FleetClient,
    result: &JobResult,
    name: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(digest) = result.logs.get(name) else {
        return Ok(None);
    };
    match client.get_bytes(&format!("/api/blobs/{digest}")) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.status() == Some(404) => Err(anyhow::anyhow!(
            "log {name:?} ({digest}) is no longer on the server (removed by `psy server gc`?)"
        )),
        Err(e) => Err(failed(e)),
    }
}

pub(crate) fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let client = connect_with(args.remote.server.as_deref(), args.remote.token.as_deref())?;
    let run = args
        .run
        .as_deref()
        .ok_or_else(|| usage("psy log TEST RUN --server needs the run id (psy runs lists them)"))?;
    let (run_id, _, result) = find(&client, run, &args.test)?;
    if let Some(n) = args
        .attempt
        .filter(|n| i64::from(*n) != i64::from(result.attempt))
    {
        return Err(usage(format!(
            "the server shows the latest attempt of a test ({} of {:?}), not attempt {n}",
            result.attempt, args.test
        )));
    }
    if result.logs.is_empty() {
        return Err(usage(format!(
            "test {:?} of run {run_id} has no uploaded logs (its agent predates them); \
             `psy show {run_id} {} --server` shows the end of its output",
            args.test, args.test
        )));
    }
    let names: Vec<String> = match (&args.node, args.timeline) {
        (_, true) => vec!["scenario.jsonl".into()],
        (Some(node), _) => streams(&args, &format!("node.{node}.")),
        (None, false) => streams(&args, ""),
    };
    if (args.timeline || args.node.is_some()) && !result.logs.contains_key("scenario.jsonl") {
        return Err(usage(format!(
            "test {:?} of run {run_id} has no scenario timeline: it has no nodes",
            args.test
        )));
    }
    let mut out = std::io::stdout().lock();
    let headers = names.len() > 1;
    for name in &names {
        let content = fetch(&client, &result, name)?;
        if headers {
            writeln!(
                out,
                "--- {name} of {} (run {run_id}, attempt {}, agent {}) ---",
                psy_report::text::escape(&args.test),
                result.attempt,
                psy_report::text::escape(&result.agent)
            )?;
        }
        match content {
            Some(bytes) => {
                out.write_all(&bytes)?;
                if headers && !bytes.ends_with(b"\n") {
                    writeln!(out)?;
                }
            }
            None if headers => writeln!(out, "(empty)")?,
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stream names `--stdout`/`--stderr` pick (both by default), after `prefix`.
fn streams(args: &LogArgs, prefix: &str) -> Vec<String> {
    let pick: &[&str] = match (args.stdout, args.stderr) {
        (true, _) => &["out"],
        (_, true) => &["err"],
        _ => &["out", "err"],
    };
    pick.iter().map(|s| format!("{prefix}{s}")).collect()
}
