//! Who may use a lease, what a lost lease costs, and what `/metrics` says about the queue,
//! against a real PostgreSQL through the HTTP API: a lease is heartbeated and reported only
//! by the token (and agent) it was granted to; a lease that expires without a result gives its
//! attempt back rather than using it up, and each attempt is recorded exactly once; the
//! queue's gauges, counters and latency histograms count what happened.

mod support;

use psy_server::Role;
use serde_json::json;
use support::fleet::{heartbeat_as, jobs, report_as, Fleet};

#[test]
fn only_the_token_and_agent_a_lease_was_granted_to_may_use_it() {
    let Some(f) = Fleet::new() else { return };
    let a = f.addr();
    let thief = f.token(Role::Agent, "other-rack");
    let run = f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("box-1", 1000, json!({}), 1).remove(0);

    // Another agent token that knows the lease id and its fencing token: refused, and the
    // refusal comes before the fencing token is looked at (it is right here).
    for agent in [None, Some("box-1")] {
        let (status, body) = heartbeat_as(a, &thief, &lease, agent);
        assert_eq!(status, 403, "another token's heartbeat: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("other-rack"),
            "{body}"
        );
        let (status, body) = report_as(a, &thief, &lease, "fail", agent);
        assert_eq!(status, 403, "another token's result: {body}");
    }
    // The right token under another agent's name (agents sharing one token): refused too.
    let (status, body) = heartbeat_as(a, &f.agent, &lease, Some("box-2"));
    assert_eq!(status, 403, "another agent's heartbeat: {body}");
    assert!(body["error"].as_str().unwrap().contains("box-1"), "{body}");
    let (status, body) = report_as(a, &f.agent, &lease, "fail", Some("box-2"));
    assert_eq!(status, 403, "another agent's result: {body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 0);

    // The holder, with and without its name.
    let (status, body) = heartbeat_as(a, &f.agent, &lease, Some("box-1"));
    assert_eq!(status, 200, "the holder's heartbeat: {body}");
    let (status, body) = heartbeat_as(a, &f.agent, &lease, None);
    assert_eq!(status, 200, "the holder's heartbeat, unnamed: {body}");
    let (status, body) = report_as(a, &f.agent, &lease, "pass", Some("box-1"));
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(false)));
    // A recorded result is not shown to another token as a duplicate either.
    let (status, body) = report_as(a, &thief, &lease, "pass", Some("box-1"));
    assert_eq!(status, 403, "another token repeating the result: {body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 1);
    let detail = f.run(run);
    assert_eq!(detail["jobs"][0]["result"]["status"], "pass");
    assert_eq!(detail["jobs"][0]["result"]["agent"], "box-1");
}

#[test]
fn a_lease_granted_without_a_token_is_bound_to_its_agent_name_only() {
    let Some(f) = Fleet::new() else { return };
    let a = f.addr();
    let other = f.token(Role::Agent, "other-rack");
    f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("box-1", 1000, json!({}), 1).remove(0);
    // As if a server older than schema version 4 had granted it (a rolling upgrade).
    assert_eq!(
        f.sql_count(
            "WITH u AS (UPDATE leases SET token_id = NULL RETURNING 1) SELECT count(*) FROM u"
        ),
        1
    );
    let (status, body) = heartbeat_as(a, &other, &lease, Some("box-2"));
    assert_eq!(status, 403, "another agent's name: {body}");
    let (status, body) = heartbeat_as(a, &other, &lease, Some("box-1"));
    assert_eq!(status, 200, "its agent, through another token: {body}");
    let (status, body) = report_as(a, &f.agent, &lease, "pass", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 1);
}

#[test]
fn an_expired_lease_gives_its_attempt_back_and_every_attempt_is_recorded_once() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(
        0,
        json!([
            {"test_id": "retried", "cpu_millis": 10, "memory_bytes": 1, "max_attempts": 2},
            {"test_id": "once", "cpu_millis": 10, "memory_bytes": 1},
        ]),
    );
    // Three agents in a row die holding both jobs: each expiry gives the attempt back.
    for agent in ["dead-1", "dead-2", "dead-3"] {
        let leases = f.claim(agent, 1000, json!({}), 2);
        assert_eq!(leases.len(), 2, "{agent} gets both jobs again");
        for lease in &leases {
            assert_eq!(
                lease["attempt"], 1,
                "{agent}: a lost lease is not an attempt"
            );
        }
        f.expire_leases();
    }
    let leases = f.claim("alive", 1000, json!({}), 2);
    assert_eq!(leases.len(), 2);
    let by_test = |id: &str| {
        leases
            .iter()
            .find(|l| l["test_id"] == id)
            .unwrap_or_else(|| panic!("no lease of {id} in {leases:?}"))
            .clone()
    };
    assert_eq!(by_test("retried")["attempt"], 1);
    assert_eq!(by_test("once")["attempt"], 1);
    // A single-attempt job fails once: it is done, not retried (its lost leases did not count
    // as failures, and neither does this one more than once).
    let (status, body) = f.report(&by_test("once"), "fail");
    assert_eq!((status, body["job_state"].as_str()), (200, Some("done")));
    // The retried job still has its second attempt: the expiries used up none.
    let (status, body) = f.report(&by_test("retried"), "fail");
    assert_eq!((status, body["job_state"].as_str()), (200, Some("queued")));
    let second = f.claim("alive", 1000, json!({}), 2);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["attempt"], 2);
    f.expire_leases();
    let second = f.claim("alive-2", 1000, json!({}), 2).remove(0);
    assert_eq!(
        second["attempt"], 2,
        "an expired retry keeps its number too"
    );
    let (status, body) = f.report(&second, "pass");
    assert_eq!((status, body["job_state"].as_str()), (200, Some("done")));

    // Each attempt recorded exactly once, each lost lease counted once, the run done.
    assert_eq!(
        f.sql_count(
            "SELECT count(*) FROM results r JOIN jobs j USING (job_id)
             WHERE (j.test_id, r.attempt, r.status) IN
                   (('retried', 1, 'fail'), ('retried', 2, 'pass'), ('once', 1, 'fail'))"
        ),
        3
    );
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 3);
    assert_eq!(
        f.sql_count("SELECT count(*) FROM leases WHERE outcome = 'expired'"),
        7
    );
    let detail = f.run(run);
    assert_eq!(detail["run"]["state"], "done");
    assert_eq!(detail["run"]["jobs"]["done"], 2);
}

#[test]
fn metrics_count_the_queue_its_agents_expiries_and_latencies() {
    let Some(f) = Fleet::new() else { return };
    f.register(&f.agent, "box-1");
    f.register(&f.agent, "box-2");
    f.submit(0, jobs(5, 10, |_| 0));
    let first = f.claim("box-1", 1000, json!({}), 2);
    assert_eq!(first.len(), 2);
    f.expire_leases();
    // The claim reclaims both expired leases (2 expiries) and takes 3 jobs.
    assert_eq!(f.claim("box-2", 1000, json!({}), 3).len(), 3);
    let third = f.claim("box-1", 1000, json!({}), 1);
    assert_eq!(third.len(), 1);
    let (status, body) = f.report(&third[0], "pass");
    assert_eq!(status, 200, "{body}");
    let metrics = f.metrics();
    for line in [
        "# TYPE psy_queue_jobs_queued gauge\npsy_queue_jobs_queued 1\n",
        "# TYPE psy_queue_jobs_leased gauge\npsy_queue_jobs_leased 3\n",
        "# TYPE psy_queue_agents_registered gauge\npsy_queue_agents_registered 2\n",
        "# TYPE psy_queue_agents_active gauge\npsy_queue_agents_active 1\n",
        "# TYPE psy_queue_lease_expiries_total counter\npsy_queue_lease_expiries_total 2\n",
        "# TYPE psy_server_claim_duration_seconds histogram\n",
        "psy_server_claim_duration_seconds_count 3\n",
        "psy_server_claim_duration_seconds_bucket{le=\"+Inf\"} 3\n",
        "# TYPE psy_server_report_duration_seconds histogram\n",
        "psy_server_report_duration_seconds_count 1\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
}
