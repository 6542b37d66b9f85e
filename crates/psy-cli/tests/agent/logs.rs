//! Logs uploaded as blobs: an agent uploads each attempt's stdout and stderr, and a scenario's
//! timeline and nodes' output, before it reports; `psy log TEST RUN --server` and
//! `psy show RUN TEST --server` read them whole, and the agent keeps none of them after.

use crate::fleet::{project, Database, Fleet, PSY};
use crate::{root, stop_agents};
use psy_server::testkit::TestSchema;
use std::process::Command;

/// A test whose stdout (about 1 MB) is far over what a report carries inline, and a
/// scenario with a node.
const MANIFEST: &str = r#"
[defaults]
cpus = 0.25
memory = "64MiB"
timeout = "60s"

[[test]]
name = "big"
command = ["sh", "-c", "seq 1 150000; echo err-of-big >&2"]

[[test]]
name = "web"
command = ["sh", "-c", "echo driver-says-hi; sleep 0.5"]

[[test.node]]
name = "n1"
command = ["sh", "-c", "echo node-says-hi; exec sleep 1000"]
"#;

/// `psy ARGS --server URL --token USER`: its stdout, after checking it succeeded.
fn psy(fleet: &Fleet, args: &[&str]) -> String {
    let out = Command::new(PSY)
        .args(args)
        .args(["--server", &fleet.url(), "--token", &fleet.user])
        .env("NO_COLOR", "1")
        .output()
        .expect("running psy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "psy {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn an_agent_uploads_its_attempts_logs_and_psy_log_reads_them_whole() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 30);
    let project = project(&fleet, MANIFEST);
    fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let run_id = fleet.submit(&project);
    let shown = fleet.wait_done(run_id);
    assert_eq!(shown.run.jobs.done, 2, "{shown:?}");
    let run = run_id.to_string();

    // The whole stdout, not the end the report carried (64 KiB once logs are uploaded).
    let stdout = psy(&fleet, &["log", "big", &run, "--stdout"]);
    assert!(stdout.starts_with("1\n2\n3\n"), "{}", &stdout[..40]);
    assert!(stdout.ends_with("\n150000\n"));
    assert_eq!(stdout.lines().count(), 150_000);
    let inline = fleet.count(
        "SELECT max(length(r.output))::bigint FROM results r JOIN jobs j USING (job_id)
         WHERE j.run_id = $1",
        run_id,
    );
    // 64 KiB and the lines saying what was cut; 1 MiB without uploaded logs.
    assert!(
        inline <= (64 << 10) + 256,
        "the report's inline output: {inline} bytes"
    );
    assert_eq!(
        psy(&fleet, &["log", "big", &run, "--stderr"]),
        "err-of-big\n"
    );

    // The scenario's timeline and its node's output.
    let timeline = psy(&fleet, &["log", "web", &run, "--timeline"]);
    assert!(timeline.contains("\"node\":\"n1\""), "{timeline}");
    let node = psy(&fleet, &["log", "web", &run, "--node", "n1", "--stdout"]);
    assert_eq!(node, "node-says-hi\n");
    let both = psy(&fleet, &["log", "web", &run]);
    assert!(
        both.contains("--- out of web") && both.contains("driver-says-hi"),
        "{both}"
    );
    let shown = psy(&fleet, &["show", &run, "web"]);
    for part in [
        "pass",
        "--- node.n1.out",
        "node-says-hi",
        "--- scenario.jsonl",
    ] {
        assert!(shown.contains(part), "{part} in:\n{shown}");
    }

    // The agent keeps none of them once reported.
    stop_agents(&mut fleet);
    let left: Vec<_> = walk(&fleet.work_dir("a1").join("state").join("logs"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.contains("big") || name.contains("web")
        })
        .collect();
    assert!(left.is_empty(), "logs left on the agent: {left:?}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
