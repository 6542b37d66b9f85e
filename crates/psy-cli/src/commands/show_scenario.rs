//! What `psy show RUN TEST` adds for a multi-node scenario's attempt: its timeline (node starts,
//! readiness, exits, faults, in order) and where each node's output is.

use psy_report::text;
use std::io::Write;
use std::path::Path;

/// Prints attempt `attempt`'s timeline and node logs, if the attempt was a scenario (its
/// driver's stdout log is at `driver_stdout`). `test` and `run` name it in the hints.
pub(crate) fn show(
    out: &mut impl Write,
    driver_stdout: &Path,
    attempt: u32,
    test: &str,
    run: &str,
) -> std::io::Result<()> {
    let timeline = psy_runner::layout::scenario_file(driver_stdout, "scenario.jsonl");
    let Ok(text) = std::fs::read_to_string(&timeline) else {
        return Ok(());
    };
    writeln!(
        out,
        "\n--- attempt {attempt} scenario timeline ({}) ---",
        timeline.display()
    )?;
    let mut nodes: Vec<String> = Vec::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let at = entry["at_ms"].as_u64().unwrap_or(0);
        let event = entry["event"].as_str().unwrap_or("?");
        let ok = entry["ok"].as_bool().unwrap_or(true);
        let node = entry["node"].as_str();
        if let Some(node) = node {
            if !nodes.iter().any(|n| n == node) {
                nodes.push(node.to_owned());
            }
        }
        let detail = entry["detail"].as_str().unwrap_or("");
        let mark = if ok { " " } else { "!" };
        let who = node.map(|n| format!(" {n}")).unwrap_or_default();
        writeln!(
            out,
            "{mark} {:>8.3}s  {event}{}: {}",
            at as f64 / 1000.0,
            text::escape(&who),
            text::escape(detail)
        )?;
    }
    for node in nodes {
        let stdout = psy_runner::layout::scenario_file(driver_stdout, &format!("node.{node}.out"));
        writeln!(
            out,
            "node {}: {} (psy log {test} {run} --attempt {attempt} --node {node})",
            text::escape(&node),
            stdout.with_extension("{out,err}").display(),
        )?;
    }
    Ok(())
}
