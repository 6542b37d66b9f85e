//! Running `[[discover]]` entries: each source finds test names and builds their commands.

mod globs;
mod list;
mod nextest;
mod process;
pub(crate) mod progress;
mod pytest;

use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, DiscoverSource};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One test found by a discover entry, before settings and variants apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    /// The source's own working directory (nextest: the package's); the entry's `cwd` wins.
    pub(crate) cwd: Option<PathBuf>,
    /// The source's own environment; the entry's `env` wins.
    pub(crate) env: BTreeMap<String, String>,
}

/// Runs one discover entry from the manifest's directory `dir`.
pub(crate) fn run(entry: &DiscoverDef, dir: &Path) -> Result<Vec<Found>, ConfigError> {
    let found = match &entry.source {
        DiscoverSource::Glob(pattern) => globs::discover(pattern, entry, dir)?,
        DiscoverSource::List(argv) => list::discover(argv, entry, dir)?,
        DiscoverSource::Nextest(options) => nextest::discover(options, entry, dir)?,
        DiscoverSource::Pytest(options) => pytest::discover(options, entry, dir)?,
    };
    if found.is_empty() {
        tracing::warn!(origin = %entry.origin, "discovery found no tests");
    } else {
        tracing::debug!(origin = %entry.origin, count = found.len(), "discovered tests");
    }
    Ok(found)
}
