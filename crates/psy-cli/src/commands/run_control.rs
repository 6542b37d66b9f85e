//! `psy run`'s control flags: which tests (`--rerun-failed`, `--shard`) and how they run
//! (`--fail-fast`, `--repeat`, `--until-fail`), checked before anything starts.

use super::context::open_store;
use crate::cli::RunControl as Flags;
use crate::exit::usage;
use psy_config::Manifest;
use psy_model::{TestId, TestSpec};
use psy_runner::layout::StateDir;
use psy_runner::{shard, RunControl, MAX_ATTEMPTS_PER_TEST};
use psy_store::Store;
use std::collections::HashSet;

/// Repetitions of `--until-fail` without `--repeat`.
const UNTIL_FAIL_BOUND: u32 = 1000;

/// Narrows the selected tests by `--rerun-failed` and `--shard`; `None` when nothing is left to
/// run and that is not an error (no failures to rerun, an empty shard): the reason is printed.
pub(crate) fn narrow(
    flags: &Flags,
    flaky_fail: bool,
    manifest: &Manifest,
    mut tests: Vec<TestSpec>,
) -> anyhow::Result<Option<Vec<TestSpec>>> {
    if flags.rerun_failed.is_none() && flags.shard.is_none() {
        return Ok(Some(tests));
    }
    let store = open_store(&StateDir::new(&manifest.dir))?;
    if let Some(run) = &flags.rerun_failed {
        match failed_in(store.as_ref(), run, flaky_fail, tests)? {
            Some(failed) => tests = failed,
            None => return Ok(None),
        }
    }
    if let Some(shard) = flags.shard {
        let total = tests.len();
        let (mine, split) = shard::select(tests, &store.expected_durations()?, shard);
        let load = |d: std::time::Duration| psy_report::format::duration(d.as_millis() as u64);
        eprintln!(
            "shard {shard}: {} of {total} test{}, expected {} (shards: {})",
            mine.len(),
            if total == 1 { "" } else { "s" },
            load(split.loads[shard.index as usize - 1]),
            split
                .loads
                .iter()
                .map(|d| load(*d))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if mine.is_empty() {
            eprintln!("shard {shard} has no tests: nothing to run");
            return Ok(None);
        }
        tests = mine;
    }
    Ok(Some(tests))
}

/// The selected tests that failed in `run` (empty: the latest run).
fn failed_in(
    store: &dyn Store,
    run: &str,
    flaky_fail: bool,
    tests: Vec<TestSpec>,
) -> anyhow::Result<Option<Vec<TestSpec>>> {
    let record = if run.is_empty() {
        store
            .latest_run()?
            .ok_or_else(|| usage("--rerun-failed: no runs recorded yet: `psy run` first"))?
    } else {
        match store.run(run) {
            Err(err @ psy_store::StoreError::AmbiguousRun { .. }) => return Err(usage(err)),
            found => found?.ok_or_else(|| {
                usage(format!("--rerun-failed={run}: no such run in this project (`psy show` lists the latest)"))
            })?,
        }
    };
    let failed: HashSet<TestId> = store
        .test_results(&record.run_id)?
        .into_iter()
        .filter(|r| !r.status.is_success(flaky_fail))
        .map(|r| r.test_id)
        .collect();
    if failed.is_empty() {
        eprintln!(
            "run {} had no failing tests: nothing to rerun",
            record.run_id
        );
        return Ok(None);
    }
    let (rerun, _): (Vec<TestSpec>, Vec<TestSpec>) =
        tests.into_iter().partition(|t| failed.contains(&t.id));
    if rerun.is_empty() {
        let mut ids: Vec<&str> = failed.iter().map(TestId::as_str).collect();
        ids.sort_unstable();
        return Err(usage(format!(
            "--rerun-failed: the tests that failed in run {} ({}) are not among the selected tests \
             (filters, variants or the manifest changed)",
            record.run_id,
            ids.join(", ")
        )));
    }
    eprintln!(
        "rerunning {} test{} that failed in run {}",
        rerun.len(),
        if rerun.len() == 1 { "" } else { "s" },
        record.run_id
    );
    Ok(Some(rerun))
}

/// The runner's control from the flags and `[run]`; refuses repetitions that do not fit.
pub(crate) fn control(
    flags: &Flags,
    flaky_fail: bool,
    manifest: &Manifest,
    tests: &[TestSpec],
    retries: Option<u32>,
) -> anyhow::Result<RunControl> {
    let repeat = match (flags.repeat, flags.until_fail) {
        (Some(0), _) => return Err(usage("--repeat 0: must be at least 1")),
        (Some(n), _) => n,
        (None, true) => UNTIL_FAIL_BOUND,
        (None, false) => 1,
    };
    let most_tries = tests
        .iter()
        .map(|t| {
            retries
                .unwrap_or(t.retries)
                .min(psy_model::bounds::MAX_RETRIES)
                + 1
        })
        .max()
        .unwrap_or(1);
    if u64::from(repeat) * u64::from(most_tries) > u64::from(MAX_ATTEMPTS_PER_TEST) {
        return Err(usage(format!(
            "--repeat {repeat} with up to {} retries: more than {MAX_ATTEMPTS_PER_TEST} attempts of one test; repeat less",
            most_tries - 1
        )));
    }
    Ok(RunControl {
        fail_fast: if flags.fail_fast {
            true
        } else if flags.no_fail_fast {
            false
        } else {
            manifest.run.fail_fast
        },
        flaky_fail,
        repeat,
        until_fail: flags.until_fail,
    })
}
