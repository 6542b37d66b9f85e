//! An agent restarting under its name takes over its registration, against a real
//! PostgreSQL through the HTTP API: the previous registration's leases end at once (their
//! jobs queued again for the same attempt, not after the leases run out), its heartbeats,
//! results and claims are refused, and the name has one agent row.

mod support;

use serde_json::{json, Value};
use support::fleet::{call, heartbeat, jobs, Fleet};

/// Registers agent `name`; its registration number.
fn register(f: &Fleet, name: &str) -> i64 {
    let body = json!({"name": name, "cpus": 2, "memory_bytes": 1i64 << 30});
    let (status, agent) = call(
        f.addr(),
        "POST",
        "/api/agents/register",
        &f.agent,
        Some(body),
    );
    assert_eq!(status, 200, "registering {name}: {agent}");
    agent["registration"]
        .as_i64()
        .expect("a registration number")
}

/// A claim by `name` under `registration`: the status and the leases (or the error).
fn claim(f: &Fleet, name: &str, registration: i64, max_jobs: u32) -> (u16, Value) {
    let request = json!({"agent": name, "cpu_millis": 2000, "memory_bytes": 1i64 << 30,
                         "max_jobs": max_jobs, "registration": registration});
    call(
        f.addr(),
        "POST",
        "/api/agents/claim",
        &f.agent,
        Some(request),
    )
}

#[test]
fn an_agent_registering_again_under_its_name_takes_over_its_leases_at_once() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(3, 500, |_| 0));
    let old = register(&f, "box-1");
    let (status, claimed) = claim(&f, "box-1", old, 2);
    assert_eq!(status, 200, "{claimed}");
    let leases = claimed["leases"].as_array().expect("leases").clone();
    assert_eq!(leases.len(), 2);
    // Another agent's lease is not touched by box-1's takeover.
    let other = register(&f, "box-2");
    let (status, theirs) = claim(&f, "box-2", other, 1);
    assert_eq!(status, 200, "{theirs}");
    let theirs = theirs["leases"][0].clone();

    // box-1 restarts (after a crash: its leases were never given back, none has expired).
    let new = register(&f, "box-1");
    assert!(new > old, "registration {new} after {old}");
    assert_eq!(
        f.sql_count("SELECT count(*) FROM agents WHERE name = 'box-1'"),
        1
    );
    assert_eq!(
        f.sql_count("SELECT count(*) FROM leases WHERE agent = 'box-1' AND outcome = 'expired'"),
        2,
        "the previous registration's leases ended at once"
    );
    assert_eq!(
        f.sql_count("SELECT count(*) FROM jobs WHERE state = 'queued'"),
        2,
        "their jobs are queued again"
    );
    // The old registration is fenced off: heartbeats, results and claims are refused.
    for lease in &leases {
        let (status, body) = heartbeat(&f, lease);
        assert_eq!(status, 409, "the old lease's heartbeat: {body}");
        let (status, body) = f.report(lease, "pass");
        assert_eq!(status, 409, "the old lease's result: {body}");
    }
    let (status, body) = claim(&f, "box-1", old, 2);
    assert_eq!(status, 409, "the old registration's claim: {body}");
    assert!(
        body["error"].as_str().unwrap().contains("registered again"),
        "{body}"
    );
    // box-2 keeps its lease.
    let (status, body) = heartbeat(&f, &theirs);
    assert_eq!(status, 200, "another agent's lease: {body}");

    // The new registration gets the jobs back, for the same attempt, and finishes the run.
    let (status, claimed) = claim(&f, "box-1", new, 2);
    assert_eq!(status, 200, "{claimed}");
    let again = claimed["leases"].as_array().expect("leases").clone();
    let ids = |ls: &[Value]| {
        let mut ids: Vec<String> = ls.iter().map(|l| l["test_id"].to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&again), ids(&leases));
    assert!(again.iter().all(|l| l["attempt"] == 1), "{again:?}");
    for lease in again.iter().chain([&theirs]) {
        assert_eq!(f.report(lease, "pass").0, 200);
    }
    let detail = f.run(run);
    assert_eq!(detail["run"]["state"], "done", "{detail}");
    assert_eq!(
        f.sql_count("SELECT count(*) FROM results"),
        3,
        "each test recorded once"
    );
}
