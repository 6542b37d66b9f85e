//! What most subcommands start with: the manifest, the selected tests, the project's store.

use crate::cli::{ManifestArg, SelectArgs};
use crate::exit::usage;
use psy_config::{DiscoverProgress, Manifest};
use psy_model::TestSpec;
use psy_report::{text, DiscoveryView, Verbosity};
use psy_runner::layout::StateDir;
use psy_store::Store;
use std::io::Write;
use std::sync::Arc;

pub(crate) fn load_manifest(arg: &ManifestArg) -> anyhow::Result<Manifest> {
    if !arg.manifest.exists() {
        return Err(usage(format!(
            "{}: no such manifest (create a psyduck.toml, or pass -m PATH; see docs/manifest.md)",
            arg.manifest.display()
        )));
    }
    psy_config::load(&arg.manifest).map_err(usage)
}

/// The manifest and the tests selected by filters and variants (a usage error if none match);
/// discovery commands show their progress as `verbosity` says.
pub(crate) fn selected_tests(
    args: &SelectArgs,
    verbosity: Verbosity,
) -> anyhow::Result<(Manifest, Vec<TestSpec>)> {
    selected_tests_warm(args, verbosity, None)
}

/// [`selected_tests`], leaving the warm workers a `warm = true` discovery started in
/// `warm_parents` (a run forks its tests from them: the suite is collected once).
pub(crate) fn selected_tests_warm(
    args: &SelectArgs,
    verbosity: Verbosity,
    warm_parents: Option<Arc<psy_config::WarmParents>>,
) -> anyhow::Result<(Manifest, Vec<TestSpec>)> {
    let manifest = load_manifest(&args.manifest)?;
    let options = psy_config::DiscoverOptions {
        run_ignored: args.run_ignored.into(),
        warm_parents,
    };
    let view = Arc::new(ShowDiscovery(DiscoveryView::stderr(verbosity)));
    let tests = manifest
        .expand_with(&args.variants, &options, view)
        .map_err(|err| {
            // The view showed a failed command's stderr; output on stdout is shown here.
            if let ("stdout", lines) = err.output() {
                let mut stderr = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(stderr, "{}", text::output_line(line));
                }
            }
            usage(err)
        })?;
    let total = tests.len();
    let tests = psy_runner::select::select(tests, &args.filters);
    if tests.is_empty() {
        return Err(usage(if total == 0 {
            format!(
                "{}: the manifest defines no tests",
                args.manifest.manifest.display()
            )
        } else {
            format!(
                "no test matches {:?} (of {total} tests; `psy list` shows them)",
                args.filters
            )
        }));
    }
    Ok((manifest, tests))
}

/// The project's results store, as the engine opens it for a run.
pub(crate) fn open_store(state: &StateDir) -> anyhow::Result<Box<dyn Store>> {
    Ok(psy_runner::engine::open_store(state)?)
}

/// Discovery progress, shown by the human report's view.
struct ShowDiscovery(DiscoveryView);

impl DiscoverProgress for ShowDiscovery {
    fn started(&self, _origin: &str, command: &str) {
        self.0.started(command);
    }

    fn line(&self, _origin: &str, line: &str) {
        self.0.line(line);
    }

    fn finished(&self, _origin: &str, ok: bool) {
        self.0.finished(ok);
    }
}
