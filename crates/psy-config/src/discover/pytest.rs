//! `pytest = true`: collect with `pytest --collect-only -q` (or, `warm = true`, with the warm
//! worker: [`super::pytest_warm`]), one psy test per node id or per file.

use super::{process, pytest_warm, DiscoverOptions, Found};
use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, PytestOptions, PytestPer};
use psy_model::{Adapter, WarmStart, RESULT_FILE};
use std::path::Path;

/// pytest's exit status when it collected nothing: a suite without tests, not a failure.
const NO_TESTS_COLLECTED: i32 = 5;

/// The cache plugin writes `.pytest_cache` into the project; containers see it read-only and
/// collection should not litter the host's checkout.
const NO_CACHE: [&str; 2] = ["-p", "no:cacheprovider"];

pub(super) fn discover(
    options: &PytestOptions,
    entry: &DiscoverDef,
    dir: &Path,
    discover: &DiscoverOptions,
) -> Result<Vec<Found>, ConfigError> {
    let mut warm = options.warm;
    if let (true, Some(parents)) = (warm, &discover.warm_parents) {
        match pytest_warm::collect(options, entry, dir, parents) {
            Ok(ids) => return Ok(from_ids(ids.iter().map(String::as_str), options, dir, true)),
            Err(reason) => {
                tracing::warn!(
                    "{}: the warm pytest worker could not collect, so this entry's tests start \
                     cold (collecting with --collect-only instead): {reason}",
                    entry.origin
                );
                warm = false;
            }
        }
    }
    let mut argv: Vec<String> = [
        options.python.as_str(),
        "-m",
        "pytest",
        "--collect-only",
        "-q",
    ]
    .into_iter()
    .chain(NO_CACHE)
    .map(String::from)
    .collect();
    argv.extend(options.args.iter().cloned());
    let listed = process::run(&argv, dir, entry, &[NO_TESTS_COLLECTED])?;
    if listed.code == Some(NO_TESTS_COLLECTED) {
        return Ok(Vec::new());
    }
    Ok(from_ids(collected(&listed.stdout), options, dir, warm))
}

/// Node ids come first in `--collect-only -q`'s output, one per line, up to the blank line
/// before the summary.
fn collected(stdout: &str) -> impl Iterator<Item = &str> {
    stdout
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.contains("::"))
}

/// The tests of node ids `ids` collected in `dir`; with `warm`, each (but those `warm-exclude`
/// matches) also gets its warm start.
fn from_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    options: &PytestOptions,
    dir: &Path,
    warm: bool,
) -> Vec<Found> {
    let mut names: Vec<String> = Vec::new();
    for id in ids {
        let name = match options.per {
            PytestPer::Test => id.to_string(),
            PytestPer::File => id.split("::").next().unwrap_or(id).to_string(),
        };
        // Node ids of one file are contiguous, so this keeps files unique.
        if names.last() != Some(&name) {
            names.push(name);
        }
    }
    // pytest's own verdict (skipped, xfailed) goes to the attempt's result file.
    let junit = format!("--junit-xml={RESULT_FILE}");
    names
        .into_iter()
        .map(|name| Found {
            command: [options.python.as_str(), "-m", "pytest", "-q"]
                .into_iter()
                .chain(NO_CACHE)
                .chain([junit.as_str(), name.as_str()])
                .map(String::from)
                .collect(),
            group: Some(name.split("::").next().unwrap_or(&name).to_string()),
            warm: (warm && !options.warm_exclude.iter().any(|p| p.matches(&name))).then(|| {
                WarmStart {
                    python: options.python.clone(),
                    args: options.args.clone(),
                    dir: dir.to_path_buf(),
                    item: name.clone(),
                    fixtures: options.warm_fixtures.clone(),
                }
            }),
            name,
            adapter: Some(Adapter::Pytest),
            ..Found::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "tests/a.py::test_x\ntests/a.py::test_p[1-2]\ntests/b.py::K::test_m\n\n3 tests collected in 0.01s\n";

    fn options(per: PytestPer) -> PytestOptions {
        PytestOptions {
            args: vec![],
            per,
            python: "python3".into(),
            warm: false,
            warm_fixtures: vec![],
            warm_exclude: vec![],
        }
    }

    fn found(options: &PytestOptions, warm: bool) -> Vec<Found> {
        from_ids(collected(OUT), options, Path::new("/p"), warm)
    }

    #[test]
    fn one_test_per_node_id() {
        let found = found(&options(PytestPer::Test), false);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tests/a.py::test_x",
                "tests/a.py::test_p[1-2]",
                "tests/b.py::K::test_m"
            ]
        );
        assert_eq!(
            found[1].command,
            [
                "python3",
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--junit-xml={psy-result-file}",
                "tests/a.py::test_p[1-2]"
            ]
        );
        assert_eq!(found[1].group.as_deref(), Some("tests/a.py"));
        assert_eq!(found[1].adapter, Some(Adapter::Pytest));
        assert_eq!(found[1].warm, None);
    }

    #[test]
    fn one_test_per_file() {
        let found = found(&options(PytestPer::File), false);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tests/a.py", "tests/b.py"]);
        assert_eq!(
            found[0].command.last().map(String::as_str),
            Some("tests/a.py")
        );
    }

    #[test]
    fn warm_tests_keep_the_cold_command_and_name_their_item() {
        let mut options = options(PytestPer::Test);
        options.warm = true;
        options.args = vec!["tests/".into()];
        options.warm_fixtures = vec!["db".into()];
        options.warm_exclude = vec![glob::Pattern::new("tests/b.py::*").unwrap()];
        let warm = found(&options, true);
        let cold = found(&options, false);
        assert_eq!(
            warm[1].warm,
            Some(WarmStart {
                python: "python3".into(),
                args: vec!["tests/".into()],
                dir: "/p".into(),
                item: "tests/a.py::test_p[1-2]".into(),
                fixtures: vec!["db".into()],
            })
        );
        assert_eq!(warm[1].command, cold[1].command);
        assert!(warm[0].warm.is_some());
        assert_eq!(warm[2].warm, None, "warm-exclude matched it");
        options.warm_exclude = vec![glob::Pattern::new("tests/a.py::test_p[[]1-2]").unwrap()];
        let escaped = found(&options, true);
        assert_eq!(
            escaped[1].warm, None,
            "`[[]` matches a parametrized id's `[`"
        );
        assert!(escaped[0].warm.is_some() && escaped[2].warm.is_some());
        assert!(cold.iter().all(|f| f.warm.is_none()));
    }
}
