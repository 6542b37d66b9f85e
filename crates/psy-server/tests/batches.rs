//! Results reported in batches and leases released, against a real PostgreSQL through the
//! HTTP API: each result of a batch is fenced by its own lease (a stale one is refused alone,
//! the others are recorded), a batch sent again is answered as duplicates without a second row,
//! and a released lease queues its job again at once for the same attempt, after which the
//! lease is refused like an expired one.

mod support;

use psy_server::Role;
use serde_json::{json, Value};
use support::fleet::{call, heartbeat, jobs, Fleet};

/// `POST /api/leases/results` with `token` for `(lease, status)` pairs.
fn report_batch(f: &Fleet, token: &str, results: &[(&Value, &str)]) -> (u16, Value) {
    let results: Vec<Value> = results
        .iter()
        .map(|(lease, status)| {
            json!({"lease_id": lease["lease_id"], "report": {
                "fencing_token": lease["fencing_token"], "status": status, "duration_ms": 7,
                "exit_code": 0, "output": format!("{} ok\n", lease["test_id"])}})
        })
        .collect();
    let body = json!({ "results": results });
    call(f.addr(), "POST", "/api/leases/results", token, Some(body))
}

fn release(f: &Fleet, token: &str, lease: &Value) -> (u16, Value) {
    let path = format!("/api/leases/{}/release", lease["lease_id"]);
    let body = json!({"fencing_token": lease["fencing_token"]});
    call(f.addr(), "POST", &path, token, Some(body))
}

#[test]
fn a_batch_fences_each_result_by_its_own_lease_and_records_each_once() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(4, 10, |_| 0));
    let leases = f.claim("a", 1000, json!({}), 4);
    assert_eq!(leases.len(), 4);
    // Lease 3 presents lease 0's fencing token: that result alone is refused.
    let mut stale = leases[3].clone();
    stale["fencing_token"] = leases[0]["fencing_token"].clone();
    let (status, body) = report_batch(
        &f,
        &f.agent,
        &[
            (&leases[0], "pass"),
            (&leases[1], "fail"),
            (&stale, "pass"),
            (&leases[2], "pass"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let outcomes = body["results"].as_array().expect("results");
    let ids: Vec<&Value> = outcomes.iter().map(|o| &o["lease_id"]).collect();
    let sent = [&leases[0], &leases[1], &leases[3], &leases[2]];
    assert_eq!(
        ids,
        sent.iter().map(|l| &l["lease_id"]).collect::<Vec<_>>(),
        "one outcome per result, in order"
    );
    for i in [0, 1, 3] {
        assert_eq!(outcomes[i]["recorded"]["duplicate"], false, "{body}");
    }
    assert_eq!(outcomes[2]["refused"]["status"], 409, "{body}");
    assert!(
        outcomes[2]["refused"]["error"]
            .as_str()
            .unwrap()
            .contains("stale"),
        "{body}"
    );
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 3);
    assert_eq!(
        f.sql_count("SELECT count(*) FROM results WHERE status = 'fail'"),
        1
    );

    // The same batch again (the agent did not hear the answer): duplicates, no new row; the
    // refused one is refused again.
    let (status, again) = report_batch(
        &f,
        &f.agent,
        &[(&leases[0], "pass"), (&leases[1], "fail"), (&stale, "pass")],
    );
    assert_eq!(status, 200, "{again}");
    let again = again["results"].as_array().unwrap();
    assert_eq!(again[0]["recorded"]["duplicate"], true);
    assert_eq!(again[1]["recorded"]["duplicate"], true);
    assert_eq!(again[2]["refused"]["status"], 409);
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 3);

    // Another token presenting the last lease: 403 for it, nothing recorded.
    let thief = f.token(Role::Agent, "other-rack");
    let (status, body) = report_batch(&f, &thief, &[(&leases[3], "pass")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["refused"]["status"], 403, "{body}");
    // A lease twice in one batch: the second is refused, the first recorded.
    let (status, body) = report_batch(&f, &f.agent, &[(&leases[3], "pass"), (&leases[3], "pass")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["recorded"]["duplicate"], false, "{body}");
    assert_eq!(body["results"][1]["refused"]["status"], 400, "{body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 4);
    assert_eq!(f.run(run)["run"]["state"], "done");
}

#[test]
fn a_released_lease_queues_its_job_again_at_once_for_the_same_attempt() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(1, 10, |_| 0));
    let old = f.claim("ahead", 1000, json!({}), 1).remove(0);
    assert!(f.claim("other", 1000, json!({}), 1).is_empty());

    let thief = f.token(Role::Agent, "other-rack");
    let (status, body) = release(&f, &thief, &old);
    assert_eq!(status, 403, "another token's release: {body}");
    let mut stale = old.clone();
    stale["fencing_token"] = json!(old["fencing_token"].as_i64().unwrap() + 1000);
    let (status, body) = release(&f, &f.agent, &stale);
    assert_eq!(status, 409, "a stale token's release: {body}");

    let (status, body) = release(&f, &f.agent, &old);
    assert_eq!(
        (status, body["job_state"].as_str()),
        (200, Some("queued")),
        "{body}"
    );
    let (status, again) = release(&f, &f.agent, &old);
    assert_eq!(status, 200, "released again: {again}");
    assert_eq!(again["job_id"], body["job_id"]);

    // No expiry needed: the job is claimable now, for the same attempt, under a new token.
    let new = f.claim("other", 1000, json!({}), 1).remove(0);
    assert_eq!(new["job_id"], old["job_id"]);
    assert_eq!(new["attempt"], old["attempt"], "a release uses no attempt");
    assert!(new["fencing_token"].as_i64() > old["fencing_token"].as_i64());
    // The released lease is refused from now on, its result included.
    let (status, body) = heartbeat(&f, &old);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("released"),
        "{body}"
    );
    let (status, body) = f.report(&old, "pass");
    assert_eq!(status, 409, "the released lease's result: {body}");
    let (status, body) = release(&f, &f.agent, &new);
    assert_eq!(status, 200, "{body}");
    let new = f.claim("other", 1000, json!({}), 1).remove(0);
    let (status, body) = f.report(&new, "pass");
    assert_eq!(status, 200, "{body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 1);
    assert_eq!(
        f.sql_count("SELECT count(*) FROM leases WHERE outcome = 'released'"),
        2
    );
    assert_eq!(f.run(run)["run"]["state"], "done");
}
