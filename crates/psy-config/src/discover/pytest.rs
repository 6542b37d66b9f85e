//! `pytest = true`: collect with `pytest --collect-only -q`, one psy test per node id or per file.

use super::{process, Found};
use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, PytestOptions, PytestPer};
use psy_model::{Adapter, RESULT_FILE};
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
) -> Result<Vec<Found>, ConfigError> {
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
    Ok(from_collected(&listed.stdout, options))
}

/// Node ids come first, one per line, up to the blank line before the summary.
fn from_collected(stdout: &str, options: &PytestOptions) -> Vec<Found> {
    let ids = stdout
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.contains("::"));
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
        }
    }

    #[test]
    fn one_test_per_node_id() {
        let found = from_collected(OUT, &options(PytestPer::Test));
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
    }

    #[test]
    fn one_test_per_file() {
        let found = from_collected(OUT, &options(PytestPer::File));
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tests/a.py", "tests/b.py"]);
        assert_eq!(
            found[0].command.last().map(String::as_str),
            Some("tests/a.py")
        );
    }
}
