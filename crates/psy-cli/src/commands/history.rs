//! `psy history TEST`: past attempts of one test, newest first. TEST is an id (`smoke@debug`),
//! a name (every variant of it: `smoke`) or a unique prefix of one (`smo`).

use super::attempt_row;
use super::context::{load_manifest, open_store};
use crate::cli::HistoryArgs;
use crate::exit::usage;
use psy_model::{AttemptResult, RunId, TestId};
use psy_report::text;
use psy_runner::layout::StateDir;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

/// Candidate ids read for a prefix; enough to name the choices, bounded for huge suites.
const MAX_CANDIDATES: usize = 1000;
/// Candidates named in an ambiguity error.
const SHOWN_CANDIDATES: usize = 10;

pub(crate) fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let store = open_store(&StateDir::new(&manifest.dir))?;
    let mut candidates = store.test_ids(&args.test, MAX_CANDIDATES)?;
    if candidates.is_empty() {
        // No id starts with it: the ids containing it, as `psy run`'s filters match.
        candidates = super::test_lookup::ids_containing(store.as_ref(), &args.test)?;
    }
    let ids = resolve(&args.test, candidates)?;
    let mut rows: Vec<(RunId, AttemptResult)> = Vec::new();
    for id in &ids {
        rows.extend(store.history(id, args.limit)?);
    }
    // Stable: one id's rows keep the store's order when start times tie.
    rows.sort_by_key(|(_, a)| std::cmp::Reverse(a.started_at_ms));
    rows.truncate(args.limit);
    let mut out = std::io::stdout().lock();
    if ids.len() == 1 {
        writeln!(out, "{:22}  {}", "RUN", attempt_row::header())?;
        for (run, a) in rows {
            writeln!(out, "{:22}  {}", run.as_str(), attempt_row::columns(&a))?;
        }
    } else {
        let (header, tests) = text::column("TEST", rows.iter().map(|(_, a)| a.test_id.as_str()));
        writeln!(out, "{:22}  {header}  {}", "RUN", attempt_row::header())?;
        for ((run, a), test) in rows.iter().zip(tests) {
            writeln!(
                out,
                "{:22}  {test}  {}",
                run.as_str(),
                attempt_row::columns(a)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The name of a test id: `smoke` for `smoke@debug`.
fn name(id: &str) -> &str {
    id.rsplit_once('@').map_or(id, |(name, _)| name)
}

/// Which recorded ids `query` means, from the ids starting with it: the exact id; else every
/// variant of the name `query`; else the ids of the one name the prefix leads to.
fn resolve(query: &str, candidates: Vec<TestId>) -> anyhow::Result<Vec<TestId>> {
    if let Some(exact) = candidates.iter().find(|id| id.as_str() == query) {
        return Ok(vec![exact.clone()]);
    }
    let variants: Vec<TestId> = candidates
        .iter()
        .filter(|id| name(id.as_str()) == query)
        .cloned()
        .collect();
    if !variants.is_empty() {
        return Ok(variants);
    }
    let names: BTreeSet<&str> = candidates.iter().map(|id| name(id.as_str())).collect();
    match names.len() {
        0 => Err(usage(format!(
            "no attempts of test {query:?} recorded (give an id `name@variant`, a name, or a unique prefix or part of one)"
        ))),
        1 => Ok(candidates),
        n => {
            let shown: Vec<&str> = names.iter().take(SHOWN_CANDIDATES).copied().collect();
            let more = if n > SHOWN_CANDIDATES {
                format!(" and {} more", n - SHOWN_CANDIDATES)
            } else {
                String::new()
            };
            Err(usage(format!(
                "{query:?} matches several tests: {}{more}; give more of the name",
                shown.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<TestId> {
        v.iter().map(|s| TestId((*s).into())).collect()
    }

    fn resolved(query: &str, candidates: &[&str]) -> Result<Vec<TestId>, String> {
        resolve(query, ids(candidates)).map_err(|e| e.to_string())
    }

    #[test]
    fn exact_id_then_variants_then_unique_prefix() {
        let all = ["flaky@debug", "flaky@release", "flaky2@debug"];
        assert_eq!(resolved("flaky@debug", &all), Ok(ids(&["flaky@debug"])));
        assert_eq!(
            resolved("flaky", &all),
            Ok(ids(&["flaky@debug", "flaky@release"]))
        );
        assert_eq!(resolved("flaky2", &all[2..]), Ok(ids(&["flaky2@debug"])));
        assert_eq!(resolved("fla", &all[..2]), Ok(ids(&all[..2])));
        assert_eq!(resolved("smo", &["smoke"]), Ok(ids(&["smoke"])));
    }

    #[test]
    fn ambiguous_prefix_lists_the_names_and_unknown_says_so() {
        let err = resolved("fl", &["flaky@debug", "flaky@release", "flat@debug"]).unwrap_err();
        assert!(
            err.contains("\"fl\" matches several tests: flaky, flat;"),
            "{err}"
        );
        let err = resolved("nope", &[]).unwrap_err();
        assert!(err.contains("no attempts of test \"nope\""), "{err}");
    }
}
