//! Finding one test's attempts in the store for `psy log` and `psy show RUN TEST`, with errors
//! that say what exists: the closest test ids, the run's attempts.

use crate::exit::usage;
use psy_model::{AttemptResult, RunId, TestId};
use psy_report::format;
use psy_store::{RunRecord, Store, StoreError};

/// How many close test ids an error suggests.
const SUGGESTIONS: usize = 3;

/// The run with id (or unique prefix) `id`, or a usage error naming it.
pub(crate) fn find_run(store: &dyn Store, id: &str) -> anyhow::Result<RunRecord> {
    match store.run(id) {
        // A prefix shared by several runs is the user's to lengthen, not a failure of psy.
        Err(err @ StoreError::AmbiguousRun { .. }) => Err(usage(err)),
        found => found?.ok_or_else(|| {
            usage(format!(
                "no run {id:?} in this project (`psy show` shows the latest run)"
            ))
        }),
    }
}

/// [`find_run`] for `psy show ARG`: when ARG is no run but a test of the latest run, the error
/// says how to show that test instead.
pub(crate) fn find_run_or_hint_test(store: &dyn Store, id: &str) -> anyhow::Result<RunRecord> {
    let err = match find_run(store, id) {
        Ok(run) => return Ok(run),
        Err(err) => err,
    };
    let Some(latest) = store.latest_run()? else {
        return Err(err);
    };
    let is_test = store
        .test_results(&latest.run_id)?
        .iter()
        .any(|r| r.test_id.as_str() == id);
    if !is_test {
        return Err(err);
    }
    Err(usage(format!(
        "no run {id:?}, but the latest run has a test of that name: `psy show {} {id}` shows it, `psy log {id}` prints its output",
        latest.run_id
    )))
}

/// Most recorded ids searched for a substring.
const SUBSTRING_SCAN: usize = 100_000;

/// Recorded test ids containing `part` (as `psy run`'s filters match), for a query that is no
/// id's prefix: `psy history panics` finds `crate it::panics_with_a_message`.
pub(crate) fn ids_containing(store: &dyn Store, part: &str) -> anyhow::Result<Vec<TestId>> {
    Ok(store
        .test_ids("", SUBSTRING_SCAN)?
        .into_iter()
        .filter(|id| id.as_str().contains(part))
        .collect())
}

/// The attempts of `test` in `run` (default: the latest run that ran it), in order. A `test`
/// that is no recorded id but part of exactly one stands for that one.
pub(crate) fn find_attempts(
    store: &dyn Store,
    test: &str,
    run: Option<&str>,
) -> anyhow::Result<(RunId, Vec<AttemptResult>)> {
    let mut id = TestId(test.to_string());
    if store.history(&id, 1)?.is_empty() {
        if let [only] = ids_containing(store, test)?.as_slice() {
            id = only.clone();
        }
    }
    let run_id = match run {
        Some(run) => find_run(store, run)?.run_id,
        None => match store.history(&id, 1)?.into_iter().next() {
            Some((run_id, _)) => run_id,
            None => {
                let latest = store
                    .latest_run()?
                    .ok_or_else(|| usage("no runs recorded yet: `psy run` first"))?;
                return Err(unknown_test(
                    store,
                    test,
                    &latest.run_id,
                    "any recorded run",
                ));
            }
        },
    };
    let attempts: Vec<AttemptResult> = store
        .attempts(&run_id)?
        .into_iter()
        .filter(|a| a.test_id == id)
        .collect();
    if attempts.is_empty() {
        return Err(unknown_test(store, test, &run_id, &format!("run {run_id}")));
    }
    Ok((run_id, attempts))
}

/// Attempt `n` (default: the last) of `attempts`, or an error giving the range.
pub(crate) fn pick_attempt<'a>(
    attempts: &'a [AttemptResult],
    n: Option<u32>,
    test: &str,
    run: &RunId,
) -> anyhow::Result<&'a AttemptResult> {
    let last = attempts
        .last()
        .expect("find_attempts returns at least one attempt");
    let Some(n) = n else {
        return Ok(last);
    };
    attempts.iter().find(|a| a.attempt == n).ok_or_else(|| {
        usage(format!(
            "test {test:?} ran {} in run {run}: --attempt {n} is out of range (1 to {})",
            format::count(attempts.len(), "attempt"),
            last.attempt
        ))
    })
}

/// `no test "x" in run R; close matches: "a", "b"` (ids from `run`'s tests).
fn unknown_test(store: &dyn Store, test: &str, run: &RunId, scope: &str) -> anyhow::Error {
    let ids: Vec<String> = match store.test_results(run) {
        Ok(results) => results.into_iter().map(|r| r.test_id.0).collect(),
        Err(e) => return e.into(),
    };
    let close = closest(test, &ids);
    let hint = if close.is_empty() {
        format!("`psy show {run}` lists its tests")
    } else {
        let quoted: Vec<String> = close.iter().map(|c| format!("{c:?}")).collect();
        format!("did you mean {}?", quoted.join(", "))
    };
    usage(format!("no test {test:?} in {scope}; {hint}"))
}

/// Up to [`SUGGESTIONS`] ids like `wanted`: containing it (or it containing them), or spelled
/// nearly alike; closest first.
pub(crate) fn closest<'a>(wanted: &str, ids: &'a [String]) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = ids
        .iter()
        .map(|id| {
            let similar = strsim::normalized_damerau_levenshtein(wanted, id);
            let contains = id.contains(wanted) || wanted.contains(id.as_str());
            (if contains { 1.0 + similar } else { similar }, id.as_str())
        })
        .filter(|(score, _)| *score >= 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(SUGGESTIONS)
        .map(|(_, id)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_ids_first() {
        let ids: Vec<String> = ["parser::eof", "parser::eof@debug", "math::add", "zzz"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            closest("parser::eof", &ids),
            ["parser::eof", "parser::eof@debug"]
        );
        assert_eq!(closest("math::ad", &ids), ["math::add"]);
        assert_eq!(closest("mtah::add", &ids), ["math::add"]);
        assert!(closest("nothing-like-it", &ids).is_empty());
    }
}
