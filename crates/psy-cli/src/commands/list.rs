//! `psy list`: the selected tests with their resources and expected durations (a scenario's:
//! its driver's and nodes' together, with the nodes named).

use super::context::{open_store, selected_tests};
use crate::cli::{ListArgs, MessageFormat};
use psy_report::{format, text, Verbosity};
use psy_runner::layout::StateDir;
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn list(args: ListArgs, verbosity: Verbosity) -> anyhow::Result<ExitCode> {
    let (manifest, tests) = selected_tests(&args.select, verbosity)?;
    let state = StateDir::new(&manifest.dir);
    let expected = if state.database().exists() {
        open_store(&state)?.expected_durations()?
    } else {
        Default::default()
    };
    // What `psy run --shard K/N` would run here, with this store's durations.
    let tests = match args.shard {
        Some(shard) => psy_runner::shard::select(tests, &expected, shard).0,
        None => tests,
    };
    let mut out = std::io::stdout().lock();
    if args.message_format == MessageFormat::Json {
        for t in &tests {
            let line = serde_json::json!({
                "id": t.id, "name": t.name, "variant": t.variant, "command": t.command,
                "cwd": t.cwd, "timeout_ms": t.timeout.as_millis() as u64, "retries": t.retries,
                "resources": t.resources, "tags": t.tags, "origin": t.origin, "labels": t.labels,
                "expected_ms": expected.get(&t.id).map(|d| d.as_millis() as u64),
                "nodes": t.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let labels: Vec<String> = tests.iter().map(label).collect();
    let (header, ids) = text::column("TEST", labels.iter().map(String::as_str));
    writeln!(
        out,
        "{}  {:>5}  {:>9}  {:>5}  {:>9}  {:>8}  {:>9}",
        header, "CPUS", "MEMORY", "PIDS", "TMP", "TIMEOUT", "EXPECTED"
    )?;
    for (t, id) in tests.iter().zip(ids) {
        // A scenario takes its driver's and all its nodes' resources at once.
        let r = &t.footprint();
        writeln!(
            out,
            "{}  {:>5}  {:>9}  {:>5}  {:>9}  {:>8}  {:>9}",
            id,
            format!("{}", f64::from(r.cpu_millis) / 1000.0),
            format::bytes(r.memory_bytes),
            r.pids,
            format::bytes(r.tmp_bytes),
            format::duration(t.timeout.as_millis() as u64),
            expected
                .get(&t.id)
                .map_or("-".into(), |d| format::duration(d.as_millis() as u64)),
        )?;
    }
    writeln!(out, "{}", format::count(tests.len(), "test"))?;
    Ok(ExitCode::SUCCESS)
}

/// The test's id, and for a scenario its nodes: `etcd (3 nodes: n1 n2 n3)`.
fn label(test: &psy_model::TestSpec) -> String {
    if !test.is_scenario() {
        return test.id.to_string();
    }
    let names: Vec<&str> = test.nodes.iter().map(|n| n.name.as_str()).collect();
    format!(
        "{} ({}: {})",
        test.id,
        format::count(names.len(), "node"),
        names.join(" ")
    )
}
