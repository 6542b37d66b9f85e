//! What most subcommands start with: the manifest, the selected tests, the project's store.

use crate::cli::{ManifestArg, SelectArgs};
use crate::exit::usage;
use anyhow::Context;
use psy_config::Manifest;
use psy_model::TestSpec;
use psy_runner::layout::StateDir;
use psy_store::SqliteStore;

pub(crate) fn load_manifest(arg: &ManifestArg) -> anyhow::Result<Manifest> {
    if !arg.manifest.exists() {
        return Err(usage(format!(
            "{}: no such manifest (create a psyduck.toml, or pass -m PATH; see docs/manifest.md)",
            arg.manifest.display()
        )));
    }
    psy_config::load(&arg.manifest).map_err(usage)
}

/// The manifest and the tests selected by filters and variants (a usage error if none match).
pub(crate) fn selected_tests(args: &SelectArgs) -> anyhow::Result<(Manifest, Vec<TestSpec>)> {
    let manifest = load_manifest(&args.manifest)?;
    let options = psy_config::DiscoverOptions {
        run_ignored: args.run_ignored.into(),
    };
    let tests = manifest
        .expand_with(&args.variants, &options)
        .map_err(usage)?;
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

pub(crate) fn open_store(state: &StateDir) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&state.database())
        .with_context(|| format!("opening the store {}", state.database().display()))
}
