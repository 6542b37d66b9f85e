//! `psy export --durations FILE` and `psy import FILE`: the store's expected test durations as a
//! versioned JSON file, so CI jobs that do not share a store compute the same `--shard` split.
//!
//! Format (version 1), test ids sorted, durations in milliseconds (fractions allowed):
//! `{"format": "psyduck-durations", "version": 1, "durations": {"id": 12.5, ...}}`

use super::context::{load_manifest, open_store};
use crate::cli::{ExportArgs, ImportArgs};
use crate::exit::usage;
use anyhow::Context;
use psy_model::TestId;
use psy_runner::layout::StateDir;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const FORMAT: &str = "psyduck-durations";
const VERSION: u64 = 1;

pub(crate) fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let store = open_store(&StateDir::new(&manifest.dir))?;
    let durations = store.expected_durations()?;
    let text = serde_json::to_string_pretty(&encode(&durations))?;
    std::fs::write(&args.durations, text + "\n")
        .with_context(|| format!("writing {}", args.durations.display()))?;
    eprintln!(
        "exported the durations of {} test{} to {}",
        durations.len(),
        if durations.len() == 1 { "" } else { "s" },
        args.durations.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| usage(format!("{}: cannot read: {e}", args.file.display())))?;
    let durations = decode(&args.file, &text).map_err(usage)?;
    let mut store = open_store(&StateDir::new(&manifest.dir))?;
    let n = store.import_durations(&durations)?;
    eprintln!(
        "imported the durations of {n} test{} from {}",
        if n == 1 { "" } else { "s" },
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn encode(durations: &HashMap<TestId, Duration>) -> Value {
    let sorted: BTreeMap<&str, f64> = durations
        .iter()
        .map(|(id, d)| (id.as_str(), d.as_micros() as f64 / 1000.0))
        .collect();
    json!({ "format": FORMAT, "version": VERSION, "durations": sorted })
}

/// Parses a durations file; errors name the file and the offending key.
fn decode(path: &Path, text: &str) -> Result<HashMap<TestId, Duration>, String> {
    let file = path.display();
    let value: Value = serde_json::from_str(text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("{file}: expected a JSON object with \"format\": \"{FORMAT}\""))?;
    if object.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(format!(
            "{file}: \"format\" is not \"{FORMAT}\" (make it with `psy export --durations FILE`)"
        ));
    }
    match object.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        other => {
            return Err(format!(
                "{file}: version {} is not supported (this psy reads version {VERSION})",
                other.map_or_else(|| "missing".to_string(), |v| v.to_string())
            ))
        }
    }
    let empty = Map::new();
    let entries = match object.get("durations") {
        Some(Value::Object(map)) => map,
        None => &empty,
        Some(_) => return Err(format!("{file}: \"durations\" must be an object of id: ms")),
    };
    entries
        .iter()
        .map(|(id, ms)| match ms.as_f64() {
            Some(ms) if (0.0..1e12).contains(&ms) => Ok((
                TestId(id.clone()),
                Duration::from_micros((ms * 1000.0).round() as u64),
            )),
            _ => Err(format!(
                "{file}: durations[{id:?}] = {ms}: expected milliseconds (a number >= 0)"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let durations: HashMap<TestId, Duration> = [("b", 1_500), ("a", 20)]
            .iter()
            .map(|&(id, us)| (TestId(id.into()), Duration::from_micros(us)))
            .collect();
        let text = serde_json::to_string(&encode(&durations)).unwrap();
        assert_eq!(
            text,
            r#"{"durations":{"a":0.02,"b":1.5},"format":"psyduck-durations","version":1}"#
        );
        assert_eq!(decode(Path::new("d.json"), &text).unwrap(), durations);
    }

    #[test]
    fn refuses_other_files_naming_them() {
        for (text, says) in [
            ("[]", "expected a JSON object"),
            (r#"{"format":"x","version":1}"#, "\"format\" is not"),
            (
                r#"{"format":"psyduck-durations","version":2}"#,
                "version 2 is not",
            ),
            (
                r#"{"format":"psyduck-durations","version":1,"durations":{"t":-1}}"#,
                "durations[\"t\"] = -1",
            ),
            ("{", "not JSON"),
        ] {
            let err = decode(Path::new("ci/d.json"), text).unwrap_err();
            assert!(
                err.starts_with("ci/d.json: ") && err.contains(says),
                "{err}"
            );
        }
    }
}
