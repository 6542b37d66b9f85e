//! The `psyduck.toml` manifest: parsing with `file:line:col` errors, validation, test
//! discovery (globs, list commands, nextest, pytest) and expansion into [`psy_model::TestSpec`]s.
//!
//! [`load`] reads and checks a manifest without running anything; [`Manifest::expand`] runs
//! discovery and crosses tests with variants; [`check_fits`] refuses requests larger than the
//! machine. The format is documented in `docs/manifest.md`.

mod discover;
mod env;
mod error;
mod expand;
mod fits;
pub mod host_file;
mod load;
mod locate;
mod manifest;
mod node;
mod raw;
mod template;
mod units;
mod values;
mod warm;

pub use discover::progress::DiscoverProgress;
pub use discover::{DiscoverOptions, RunIgnored};
pub use error::{ConfigError, Location, ScenarioExcess};
pub use fits::{check_fits, check_privileges};
pub use load::{load, parse};
pub use manifest::{
    find_manifest, DiscoverDef, DiscoverSource, HostConfig, ImageChoice, Manifest, NextestOptions,
    NodeDef, PrepareConfig, PytestOptions, PytestPer, ReportConfig, RunConfig, Settings, TestDef,
    Variant, DEFAULT_DISCOVER_TIMEOUT, DEFAULT_PREPARE_TIMEOUT, DEFAULT_TIMEOUT, MANIFEST_FILE,
};
pub use units::{
    cpus_to_millis, format_cpus, format_duration, format_size, parse_duration, parse_rate,
    parse_size, UnitError,
};
pub use warm::{WarmKey, WarmParents};
