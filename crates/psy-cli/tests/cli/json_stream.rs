//! `--message-format json`: stdout is JSON lines only, shaped as docs/events.md says, and in
//! the documented order; the human view stays on stderr.

use crate::support::{root, Project};
use serde_json::Value;

const SUITE: &str = r#"
[[test]]
name = "pass"
command = ["true"]
cpus = 0.5
memory = "96MiB"
pids = 32
tmp = "8MiB"
[[test]]
name = "fail"
command = ["sh", "-c", "exit 4"]
[[test]]
name = "flaky"
command = ["sh", "-c", "[ \"$PSY_ATTEMPT\" -ge 2 ]"]
retries = 1
"#;

#[track_caller]
fn assert_fields(v: &Value, fields: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for f in fields {
        assert!(obj.contains_key(*f), "no {f:?} in {v}");
    }
}

#[test]
fn stream_is_documented_json_lines() {
    if !root() {
        return;
    }
    let p = Project::new(SUITE);
    let (out, events) = p.run_json(&[]);
    out.code(1);
    let all = &events.0;
    assert!(
        !out.stdout.is_empty() && out.stdout.ends_with('\n'),
        "{out}"
    );
    assert!(
        out.stderr.contains("Summary"),
        "human view on stderr\n{out}"
    );

    // Every line reads back into the model's own event type.
    for line in out.stdout.lines() {
        serde_json::from_str::<psy_model::RunEvent>(line)
            .unwrap_or_else(|e| panic!("{line} is not a RunEvent: {e}"));
    }

    assert_eq!(all.first().unwrap()["type"], "run-started");
    assert_eq!(all.last().unwrap()["type"], "run-finished");
    assert_eq!(events.of_type("run-started").count(), 1);
    assert_eq!(events.of_type("run-finished").count(), 1);
    let started = &all[0];
    let finished = all.last().unwrap();
    assert_fields(started, &["type", "run_id", "total", "started_at_ms"]);
    assert_fields(finished, &["type", "run_id", "summary"]);
    assert_eq!(started["run_id"], finished["run_id"]);
    assert_eq!(started["total"], 3);

    for e in events.of_type("attempt-started") {
        assert_fields(e, &["test_id", "attempt", "resources"]);
        assert_fields(
            &e["resources"],
            &["cpu_millis", "memory_bytes", "pids", "tmp_bytes"],
        );
    }
    let pass_start = events
        .of_type("attempt-started")
        .find(|e| e["test_id"] == "pass")
        .unwrap();
    assert_eq!(pass_start["resources"]["cpu_millis"], 500);
    assert_eq!(pass_start["resources"]["memory_bytes"], 96 << 20);
    assert_eq!(pass_start["resources"]["pids"], 32);
    assert_eq!(pass_start["resources"]["tmp_bytes"], 8 << 20);

    let result_fields = [
        "test_id",
        "attempt",
        "status",
        "exit",
        "started_at_ms",
        "duration_ms",
        "cpu_time_ms",
        "peak_memory_bytes",
        "stdout_path",
        "stderr_path",
        "message",
    ];
    for e in events.of_type("attempt-finished") {
        assert_fields(&e["result"], &result_fields);
        assert_fields(&e["result"]["exit"], &["code", "signal"]);
        assert!(e["result"]["status"].is_string(), "{e}");
    }
    assert_eq!(events.of_type("attempt-finished").count(), 4);
    assert_eq!(events.attempts("fail")[0]["status"], "fail");
    assert_eq!(events.attempts("fail")[0]["exit"]["code"], 4);
    assert_eq!(events.attempts("fail")[0]["exit"]["signal"], Value::Null);
    let flaky: Vec<&str> = events
        .attempts("flaky")
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(flaky, ["fail", "pass"]);

    for e in events.of_type("attempt-retrying") {
        assert_fields(e, &["test_id", "next_attempt"]);
    }
    for e in events.of_type("test-finished") {
        assert_fields(
            &e["result"],
            &["test_id", "status", "attempts", "duration_ms"],
        );
    }
    assert_eq!(events.test_ids(), ["fail", "flaky", "pass"]);
    assert_eq!(events.status("pass"), "pass");
    assert_eq!(events.status("fail"), "fail");
    assert_eq!(events.status("flaky"), "flaky");

    let s = events.summary();
    assert_fields(
        s,
        &[
            "total",
            "passed",
            "failed",
            "flaky",
            "timed_out",
            "oom",
            "errors",
            "not_run",
            "duration_ms",
        ],
    );
    let counts = [
        "passed",
        "failed",
        "flaky",
        "timed_out",
        "oom",
        "errors",
        "not_run",
    ];
    let sum: u64 = counts.iter().map(|k| s[*k].as_u64().unwrap()).sum();
    assert_eq!(sum, s["total"].as_u64().unwrap());
    assert_eq!(
        counts.map(|k| s[k].as_u64().unwrap()),
        [1, 1, 1, 0, 0, 0, 0],
        "{s}"
    );

    assert_order(all, "flaky");
}

/// For one test: started(1) < finished(1) < retrying(2) < started(2) < finished(2) < verdict.
fn assert_order(all: &[Value], test: &str) {
    let kinds: Vec<String> = all
        .iter()
        .filter(|e| e["test_id"] == test || e["result"]["test_id"] == test)
        .map(|e| {
            let n = e
                .get("attempt")
                .or_else(|| e.get("next_attempt"))
                .or_else(|| e["result"].get("attempt"))
                .map_or(String::new(), |n| format!(" {n}"));
            format!("{}{n}", e["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "attempt-started 1",
            "attempt-finished 1",
            "attempt-retrying 2",
            "attempt-started 2",
            "attempt-finished 2",
            "test-finished",
        ]
    );
}
