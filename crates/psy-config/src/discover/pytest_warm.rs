//! `warm = true` collection: the entry's warm pytest worker collects (once for discovery and
//! the run alike) and is left in the run's [`WarmParents`] for the runner to fork tests from.

use super::progress;
use crate::manifest::{DiscoverDef, PytestOptions};
use crate::warm::{WarmKey, WarmParents};
use psy_warm::{WarmError, WarmParent};
use std::path::Path;

/// The node ids the entry's worker collected, starting it unless `parents` already holds one
/// for the same key. The worker's failure is the caller's cue to collect and run cold.
pub(super) fn collect(
    options: &PytestOptions,
    entry: &DiscoverDef,
    dir: &Path,
    parents: &WarmParents,
) -> Result<Vec<String>, WarmError> {
    let key = WarmKey {
        python: options.python.clone(),
        args: options.args.clone(),
        dir: dir.to_path_buf(),
        fixtures: options.warm_fixtures.clone(),
        env: entry.env.clone(),
    };
    if let Some(items) = parents.items(&key) {
        return Ok(items);
    }
    let shown = format!(
        "{} -c <psy warm worker> -q -p no:cacheprovider {}",
        options.python,
        options.args.join(" ")
    );
    let observer = progress::current();
    if let Some(o) = &observer {
        o.started(&entry.origin, shown.trim_end());
    }
    // Tests inherit the worker's memory, its environment block included: it gets what a
    // test's environment is built from (psy's own without `PSY_*`, then the entry's), never
    // psy's own variables.
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("PSY_"))
        .chain(entry.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    let started = WarmParent::start_exactly(
        &options.python,
        &options.args,
        dir,
        &env,
        Some(entry.discover_timeout),
    );
    if let Some(o) = &observer {
        o.finished(&entry.origin, started.is_ok());
    }
    let parent = started?;
    let items = parent.items().to_vec();
    if !options.warm_fixtures.is_empty() {
        // psy-warm cannot set fixtures up in the worker yet; children set them up each
        // themselves, as cold tests do, which is slower but gives the same results.
        tracing::warn!(
            "{}: warm-fixtures ({}) are not set up once in the warm worker yet: each test sets \
             them up itself",
            entry.origin,
            options.warm_fixtures.join(", ")
        );
    }
    if items.is_empty() {
        // Nothing to fork: the worker would only idle until the run ends.
        if let Err(e) = parent.shutdown() {
            tracing::warn!("{}: stopping an idle warm pytest worker: {e}", entry.origin);
        }
    } else {
        parents.insert(key, parent);
    }
    Ok(items)
}
