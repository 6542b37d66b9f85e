//! Running `[[discover]]` entries: each source finds test names and builds their commands.

mod globs;
mod list;
mod nextest;
mod process;
pub(crate) mod progress;
mod pytest;
mod pytest_warm;

use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, DiscoverSource};
use psy_model::Adapter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which `#[ignore]`d tests a run takes (`psy run --run-ignored`), as nextest's option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunIgnored {
    /// Ignored tests are listed and reported `skipped` (their runner says so without running
    /// them); the others run.
    #[default]
    Default,
    /// Only the ignored tests, and they run.
    Only,
    /// Every test; the ignored ones run too.
    All,
}

/// How discovery runs, from the command line.
#[derive(Clone, Debug, Default)]
pub struct DiscoverOptions {
    pub run_ignored: RunIgnored,
    /// Where a pytest entry with `warm = true` leaves the warm worker it collected with, for
    /// the runner to take ([`crate::WarmParents::take_for`]). `None`: such entries collect with
    /// `pytest --collect-only` as the others, and the runner starts its own workers.
    pub warm_parents: Option<std::sync::Arc<crate::WarmParents>>,
}

/// One test found by a discover entry, before settings and variants apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    /// The source's own working directory (nextest: the package's); the entry's `cwd` wins.
    pub(crate) cwd: Option<PathBuf>,
    /// The source's own environment; the entry's `env` wins.
    pub(crate) env: BTreeMap<String, String>,
    /// JUnit's classname (the test binary, the pytest file); the entry's origin by default.
    pub(crate) group: Option<String>,
    /// The native runner whose conventions the test follows.
    pub(crate) adapter: Option<Adapter>,
    /// Host directories the source needs writable (nextest: `CARGO_TARGET_TMPDIR`), added to
    /// the entry's `writable`.
    pub(crate) writable: Vec<PathBuf>,
    /// Host directories the source needs visible, read-only, wherever they are (nextest: a
    /// target directory outside the project, which may be under the containers' private /tmp).
    pub(crate) readonly: Vec<PathBuf>,
    /// How the test starts warm (pytest's `warm = true`); `command` stays the cold fallback.
    pub(crate) warm: Option<psy_model::WarmStart>,
}

/// Runs one discover entry from the manifest's directory `dir`.
pub(crate) fn run(
    entry: &DiscoverDef,
    dir: &Path,
    options: &DiscoverOptions,
) -> Result<Vec<Found>, ConfigError> {
    let found = match &entry.source {
        DiscoverSource::Glob(pattern) => globs::discover(pattern, entry, dir)?,
        DiscoverSource::List(argv) => list::discover(argv, entry, dir)?,
        DiscoverSource::Nextest(nextest) => nextest::discover(nextest, entry, dir, options)?,
        DiscoverSource::Pytest(pytest) => pytest::discover(pytest, entry, dir, options)?,
    };
    if found.is_empty() {
        tracing::warn!(origin = %entry.origin, "discovery found no tests");
    } else {
        tracing::debug!(origin = %entry.origin, count = found.len(), "discovered tests");
    }
    Ok(found)
}
