//! A result names its attempt's log blobs (server schema version 7): recorded with it, shown
//! with the run, part of what a repeated report must match, and checked (plain names, real
//! digests).

mod support;

use psy_snapshot::sha256;
use serde_json::{json, Value};
use support::fleet::{call, jobs, Fleet};

fn report(f: &Fleet, lease: &Value, logs: Value) -> (u16, Value) {
    let path = format!("/api/leases/{}/result", lease["lease_id"]);
    let body = json!({"fencing_token": lease["fencing_token"], "status": "pass",
                      "duration_ms": 3, "output": "end\n", "logs": logs});
    call(f.addr(), "POST", &path, &f.agent, Some(body))
}

#[test]
fn a_result_names_its_log_blobs_and_they_are_shown_with_the_run() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("box", 1000, json!({}), 1).remove(0);
    let (out, timeline) = (sha256(b"hello\n"), sha256(b"{}\n"));

    for bad in [
        json!({"../out": out}),
        json!({"": out}),
        json!({"out": "sha256:nothex"}),
    ] {
        let (status, body) = report(&f, &lease, bad.clone());
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let logs = json!({"out": out, "scenario.jsonl": timeline});
    let (status, body) = report(&f, &lease, logs.clone());
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (status, body) = report(&f, &lease, logs.clone());
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, body) = report(&f, &lease, json!({"out": timeline}));
    assert_eq!(status, 409, "another result under the same lease: {body}");

    let detail = f.run(run);
    assert_eq!(detail["jobs"][0]["result"]["logs"], logs, "{detail}");
}
