//! `glob = "tests/*.sh"`: one test per matching file.

use super::Found;
use crate::error::ConfigError;
use crate::manifest::DiscoverDef;
use crate::template;
use std::path::Path;

pub(super) fn discover(
    pattern: &str,
    entry: &DiscoverDef,
    dir: &Path,
) -> Result<Vec<Found>, ConfigError> {
    // Escape the directory so brackets or stars in it are not taken as a pattern.
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(&dir.to_string_lossy())
        )
    };
    let paths = glob::glob(&full).expect("glob patterns are checked at load");
    let command = entry
        .command
        .as_deref()
        .expect("glob entries have a command (checked at load)");
    let mut found = Vec::new();
    for path in paths {
        let path = path.map_err(|e| ConfigError::GlobRead {
            origin: entry.origin.clone(),
            path: e.path().to_path_buf(),
            source: e.into(),
        })?;
        if !path.is_file() {
            continue;
        }
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let file = path
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let mut vars = vec![
            ("path", relative.as_str()),
            ("stem", stem.as_str()),
            ("file", file.as_str()),
        ];
        let name = match &entry.name {
            Some(t) => template::render(t, &vars),
            None => relative.clone(),
        };
        vars.push(("name", &name));
        found.push(Found {
            command: template::render_argv(command, &vars),
            name,
            ..Found::default()
        });
    }
    Ok(found)
}
