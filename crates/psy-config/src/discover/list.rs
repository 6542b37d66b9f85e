//! `list = ["./list-tests.sh"]`: a host command prints one test name per line.

use super::{process, Found};
use crate::error::ConfigError;
use crate::manifest::DiscoverDef;
use crate::template;
use std::path::Path;

pub(super) fn discover(
    argv: &[String],
    entry: &DiscoverDef,
    dir: &Path,
) -> Result<Vec<Found>, ConfigError> {
    let listed = process::run(argv, dir, entry, &[])?;
    let command = entry
        .command
        .as_deref()
        .expect("list entries have a command (checked at load)");
    Ok(listed
        .stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|name| Found {
            name: name.to_string(),
            command: template::render_argv(command, &[("name", name)]),
            ..Found::default()
        })
        .collect())
}
