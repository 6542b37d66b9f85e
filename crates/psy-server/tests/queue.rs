//! The work queue against a real PostgreSQL, through the HTTP API: claims are exclusive under
//! concurrency (across two servers on one schema), fit capacity and labels, follow priority and
//! fair share; leases are fenced (heartbeat, expiry and reclaim, stale results refused);
//! results are recorded once; failures are retried; runs finish and can be cancelled.
//! Lease expiry is forced by moving `expires_at` into the past, so no test waits for a clock.

mod support;

use psy_server::testkit::{block_on, http};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::fleet::{call, claim, heartbeat, jobs, test_ids, Fleet};
use support::TestServer;

#[test]
fn concurrent_claims_through_two_servers_get_every_job_exactly_once() {
    let Some(f) = Fleet::new() else { return };
    // A second server on the same schema, started (and migrating) while the first runs.
    let second = TestServer::start(f.db.clone(), true);
    let run = f.submit(0, jobs(300, 10, |i| (i % 17) as i64));
    let addrs = [f.addr(), second.addr];
    let claimers: Vec<_> = (0..8)
        .map(|t| {
            let (addr, token) = (addrs[t % 2], f.agent.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let got = claim(addr, &token, &format!("agent-{t}"), 1000, json!({}), 7);
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut claimed: Vec<Value> = claimers
        .into_iter()
        .flat_map(|c| c.join().expect("a claimer panicked"))
        .collect();
    claimed.extend(f.claim("late", 1000, json!({}), 1000));
    let ids: Vec<i64> = claimed
        .iter()
        .map(|l| l["job_id"].as_i64().unwrap())
        .collect();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 300, "every job claimed exactly once");
    assert_eq!(unique.len(), 300, "no job claimed twice");
    let tokens: BTreeSet<i64> = claimed
        .iter()
        .map(|l| l["fencing_token"].as_i64().unwrap())
        .collect();
    assert_eq!(tokens.len(), 300, "every lease has its own fencing token");
    assert_eq!(
        f.sql_count("SELECT count(*) FROM leases WHERE outcome IS NULL"),
        300
    );
    assert_eq!(f.run(run)["run"]["state"], "running");
}

#[test]
fn claims_fit_free_capacity_and_labels() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, json!([
        {"test_id": "big", "cpu_millis": 1500, "memory_bytes": 1, "expected_ms": 900},
        {"test_id": "huge-memory", "cpu_millis": 1, "memory_bytes": 2i64 << 30, "expected_ms": 800},
        {"test_id": "arm", "cpu_millis": 100, "memory_bytes": 1, "labels": {"arch": "arm64"}, "expected_ms": 700},
        {"test_id": "small-1", "cpu_millis": 400, "memory_bytes": 1, "expected_ms": 30},
        {"test_id": "small-2", "cpu_millis": 400, "memory_bytes": 1, "expected_ms": 20},
        {"test_id": "small-3", "cpu_millis": 400, "memory_bytes": 1, "expected_ms": 10},
    ]));
    // 1000 millis and 1 GiB free, no labels: two small ones fit together, nothing else.
    let got = f.claim("x86", 1000, json!({"arch": "x86_64"}), 10);
    assert_eq!(test_ids(&got), ["small-1", "small-2"]);
    // Labels must all be present on the agent (extra agent labels are fine).
    let got = f.claim("arm", 100, json!({"arch": "arm64", "os": "linux"}), 10);
    assert_eq!(test_ids(&got), ["arm"]);
    assert!(
        f.claim("small", 100, json!({}), 10).is_empty(),
        "nothing fits 100 millis"
    );
    assert!(
        f.claim("zero", 1000, json!({}), 0).is_empty(),
        "max_jobs 0 takes nothing"
    );
    let got = f.claim("large", 2000, json!({}), 10);
    assert_eq!(
        test_ids(&got),
        ["big", "small-3"],
        "the 500 millis the big job leaves fit the last small one; memory still caps huge-memory"
    );
    let detail = f.run(run);
    let queued: Vec<&str> = detail["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "queued")
        .map(|j| j["test_id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, ["huge-memory"]);
}

#[test]
fn claims_follow_priority_then_fair_share_then_longest_first() {
    let Some(f) = Fleet::new() else { return };
    let big = f.submit(0, jobs(5, 10, |i| 100 + i as i64));
    let small = f.submit(0, json!([{"test_id": "s0", "cpu_millis": 10, "memory_bytes": 1, "expected_ms": 1}, {"test_id": "s1", "cpu_millis": 10, "memory_bytes": 1, "expected_ms": 2}]));
    let urgent = f.submit(
        5,
        json!([{"test_id": "u0", "cpu_millis": 10, "memory_bytes": 1}]),
    );
    let order: Vec<(i64, String)> = (0..8)
        .flat_map(|_| f.claim("one-at-a-time", 1000, json!({}), 1))
        .map(|l| {
            (
                l["run_id"].as_i64().unwrap(),
                l["test_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = [
        (urgent, "u0"),
        (big, "t4"),
        (small, "s1"),
        (big, "t3"),
        (small, "s0"),
        (big, "t2"),
        (big, "t1"),
        (big, "t0"),
    ]
    .into_iter()
    .map(|(r, t)| (r, t.to_string()))
    .collect();
    assert_eq!(order, want);
    // One batch alternates between runs the same way.
    let fresh_a = f.submit(0, jobs(3, 10, |i| i as i64));
    let fresh_b = f.submit(0, jobs(3, 10, |i| i as i64));
    let batch = f.claim("batch", 1000, json!({}), 4);
    let runs: Vec<i64> = batch
        .iter()
        .map(|l| l["run_id"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, [fresh_a, fresh_b, fresh_a, fresh_b]);
}

#[test]
fn heartbeats_extend_a_lease_even_past_expiry_until_it_is_reclaimed() {
    let Some(f) = Fleet::new() else { return };
    f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("slow", 1000, json!({}), 1).remove(0);
    f.expire_leases();
    // Expired, but no one claimed the job: the heartbeat still renews it.
    let (status, body) = heartbeat(&f, &lease);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        f.sql_count("SELECT count(*) FROM leases WHERE expires_at > now() + interval '10 seconds'"),
        1,
        "renewed by the default 30 s"
    );
    assert!(
        f.claim("other", 1000, json!({}), 1).is_empty(),
        "a renewed lease is not reclaimed"
    );
    let mut wrong = lease.clone();
    wrong["fencing_token"] = json!(lease["fencing_token"].as_i64().unwrap() + 1000);
    let (status, body) = heartbeat(&f, &wrong);
    assert_eq!(status, 409, "wrong token: {body}");
    assert!(body["error"].as_str().unwrap().contains("stale"), "{body}");
    let (status, _) = call(
        f.addr(),
        "POST",
        "/api/leases/999999/heartbeat",
        &f.agent,
        Some(json!({"fencing_token": 1})),
    );
    assert_eq!(status, 404);
}

#[test]
fn an_expired_lease_is_reclaimed_and_its_old_holder_is_refused() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(1, 10, |_| 0));
    let old = f.claim("dead", 1000, json!({}), 1).remove(0);
    f.expire_leases();
    let new = f.claim("alive", 1000, json!({}), 1).remove(0);
    assert_eq!(new["job_id"], old["job_id"], "the job was claimed again");
    assert!(
        new["fencing_token"].as_i64() > old["fencing_token"].as_i64(),
        "a newer lease has a larger token"
    );
    assert_eq!(
        new["attempt"], old["attempt"],
        "a lost lease is not a failed attempt"
    );

    let (status, body) = heartbeat(&f, &old);
    assert_eq!(status, 409, "old heartbeat: {body}");
    let (status, body) = f.report(&old, "pass");
    assert_eq!(status, 409, "old result: {body}");
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let (status, body) = f.report(&new, "pass");
    assert_eq!(status, 200, "new result: {body}");

    assert_eq!(
        f.sql_count("SELECT count(*) FROM results"),
        1,
        "recorded once"
    );
    let detail = f.run(run);
    assert_eq!(detail["jobs"][0]["result"]["agent"], "alive");
    assert_eq!(detail["run"]["state"], "done");
    let metrics = http(f.addr(), "GET", "/metrics", None, None).body;
    for line in [
        "psy_queue_lease_expiries_total 1\n",
        "psy_queue_jobs_queued 0\n",
        "psy_queue_jobs_leased 0\n",
        "psy_server_claim_duration_seconds_count 2\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
}

#[test]
fn a_repeated_report_is_answered_again_without_a_second_row() {
    let Some(f) = Fleet::new() else { return };
    f.submit(0, jobs(2, 10, |_| 0));
    let leases = f.claim("a", 1000, json!({}), 2);
    let (status, first) = f.report(&leases[0], "pass");
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = f.report(&leases[0], "pass");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["job_id"], first["job_id"]);
    let (status, different) = f.report(&leases[0], "fail");
    assert_eq!(
        status, 409,
        "a different result for the same attempt: {different}"
    );
    let mut stale = leases[1].clone();
    stale["fencing_token"] = leases[0]["fencing_token"].clone();
    let (status, body) = f.report(&stale, "pass");
    assert_eq!(status, 409, "another lease's token: {body}");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 1);
}

#[test]
fn a_failed_attempt_with_attempts_left_is_queued_again() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(
        0,
        json!([{"test_id": "flaky", "cpu_millis": 10, "memory_bytes": 1, "max_attempts": 2}]),
    );
    let first = f.claim("a", 1000, json!({}), 1).remove(0);
    assert_eq!(first["attempt"], 1);
    let (status, body) = f.report(&first, "fail");
    assert_eq!(
        (status, body["job_state"].as_str()),
        (200, Some("queued")),
        "{body}"
    );
    assert_eq!(f.run(run)["run"]["state"], "running");
    let second = f.claim("b", 1000, json!({}), 1).remove(0);
    assert_eq!(second["attempt"], 2);
    assert_eq!(second["job_id"], first["job_id"]);
    let (status, body) = f.report(&second, "timeout");
    assert_eq!(
        (status, body["job_state"].as_str()),
        (200, Some("done")),
        "no attempts left: {body}"
    );
    let detail = f.run(run);
    assert_eq!(detail["run"]["state"], "done");
    assert_eq!(detail["jobs"][0]["result"]["attempt"], 2);
    assert_eq!(detail["jobs"][0]["result"]["status"], "timeout");
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 2);
}

#[test]
fn a_run_is_done_when_its_last_job_is_and_listed_with_counts() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(3, 10, |_| 0));
    let leases = f.claim("a", 1000, json!({}), 3);
    for (i, lease) in leases.iter().enumerate() {
        assert_ne!(f.run(run)["run"]["state"], "done", "before result {i}");
        assert_eq!(
            f.report(lease, if i == 0 { "skipped" } else { "pass" }).0,
            200
        );
    }
    let detail = f.run(run);
    assert_eq!(detail["run"]["state"], "done");
    assert!(detail["run"]["finished_at"].is_string(), "{detail}");
    assert_eq!(detail["run"]["submitter"], "alice");
    let (status, list) = call(f.addr(), "GET", "/api/runs", &f.user, None);
    assert_eq!(status, 200);
    assert_eq!(list[0]["run_id"], run);
    assert_eq!(
        list[0]["jobs"],
        json!({"queued": 0, "leased": 0, "done": 3, "cancelled": 0, "total": 3})
    );
}

#[test]
fn a_claim_that_finds_nothing_finishes_runs_left_unfinished() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("a", 1000, json!({}), 1).remove(0);
    assert_eq!(f.report(&lease, "pass").0, 200);
    // As if the last reporter's server had died between its commit and its check.
    block_on(async {
        let client = f.db.client().await.expect("a connection");
        client
            .execute("UPDATE runs SET state = 'running', finished_at = NULL", &[])
            .await
            .expect("unfinishing the run")
    });
    assert_eq!(f.run(run)["run"]["state"], "running");
    assert!(f.claim("idle", 1000, json!({}), 1).is_empty());
    assert_eq!(f.run(run)["run"]["state"], "done");
}

#[test]
fn a_cancelled_run_hands_out_nothing_and_refuses_its_leases() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(3, 10, |_| 0));
    let lease = f.claim("a", 1000, json!({}), 1).remove(0);
    let path = format!("/api/runs/{run}/cancel");
    let (status, body) = call(f.addr(), "POST", &path, &f.user, None);
    assert_eq!(
        (status, body["cancelled_jobs"].as_i64()),
        (200, Some(3)),
        "{body}"
    );
    assert!(f.claim("b", 1000, json!({}), 10).is_empty());
    let (status, body) = heartbeat(&f, &lease);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
    assert_eq!(f.report(&lease, "pass").0, 409);
    assert_eq!(f.sql_count("SELECT count(*) FROM results"), 0);
    let detail = f.run(run);
    assert_eq!(detail["run"]["state"], "cancelled");
    assert_eq!(detail["run"]["jobs"]["cancelled"], 3);
    assert_eq!(
        call(f.addr(), "POST", &path, &f.user, None).0,
        200,
        "cancelling again"
    );
    // A finished run cannot be cancelled; an unknown one is a 404.
    let done = f.submit(0, jobs(1, 10, |_| 0));
    let lease = f.claim("a", 1000, json!({}), 1).remove(0);
    assert_eq!(f.report(&lease, "pass").0, 200);
    assert_eq!(
        call(
            f.addr(),
            "POST",
            &format!("/api/runs/{done}/cancel"),
            &f.user,
            None
        )
        .0,
        409
    );
    assert_eq!(
        call(f.addr(), "POST", "/api/runs/999999/cancel", &f.user, None).0,
        404
    );
}

#[test]
fn users_and_agents_keep_to_their_own_endpoints_and_bad_requests_are_400() {
    let Some(f) = Fleet::new() else { return };
    let a = f.addr();
    let submission = json!({"jobs": jobs(1, 10, |_| 0)});
    assert_eq!(
        call(a, "POST", "/api/runs", &f.agent, Some(submission.clone())).0,
        403
    );
    assert_eq!(call(a, "GET", "/api/runs", &f.agent, None).0, 403);
    assert_eq!(call(a, "GET", "/api/runs/1", &f.agent, None).0, 403);
    assert_eq!(call(a, "POST", "/api/runs/1/cancel", &f.agent, None).0, 403);
    let claim = json!({"agent": "u", "cpu_millis": 1, "memory_bytes": 1, "max_jobs": 1});
    assert_eq!(
        call(a, "POST", "/api/agents/claim", &f.user, Some(claim)).0,
        403
    );
    assert_eq!(
        call(a, "POST", "/api/leases/1/result", &f.user, Some(json!({}))).0,
        403
    );
    assert_eq!(
        call(
            a,
            "POST",
            "/api/leases/1/heartbeat",
            &f.user,
            Some(json!({}))
        )
        .0,
        403
    );
    for (what, body) in [
        ("no jobs", json!({"jobs": []})),
        (
            "a duplicate test",
            json!({"jobs": [jobs(1, 10, |_| 0)[0].clone(), jobs(1, 10, |_| 0)[0].clone()]}),
        ),
        (
            "no attempts",
            json!({"jobs": [{"test_id": "a", "cpu_millis": 1, "memory_bytes": 1, "max_attempts": 0}]}),
        ),
        ("an unknown field", json!({"jobs": [], "colour": "red"})),
    ] {
        let (status, answer) = call(a, "POST", "/api/runs", &f.user, Some(body));
        assert_eq!(status, 400, "{what}: {answer}");
    }
    assert_eq!(call(a, "GET", "/api/runs/abc", &f.user, None).0, 400);
    assert_eq!(call(a, "GET", "/api/runs/999999", &f.user, None).0, 404);
    let bad_status = json!({"fencing_token": 1, "status": "great", "duration_ms": 1});
    assert_eq!(
        call(
            a,
            "POST",
            "/api/leases/1/result",
            &f.agent,
            Some(bad_status)
        )
        .0,
        400
    );
    let nul = json!({"fencing_token": 1, "status": "pass", "duration_ms": 1, "output": "a\u{0}b"});
    let (status, answer) = call(a, "POST", "/api/leases/1/result", &f.agent, Some(nul));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("NUL"), "{answer}");
    let labels: BTreeMap<String, String> = BTreeMap::new();
    let too_many = json!({"agent": "x", "cpu_millis": 1, "memory_bytes": 1, "labels": labels, "max_jobs": 100000});
    assert_eq!(
        call(a, "POST", "/api/agents/claim", &f.agent, Some(too_many)).0,
        400
    );
}
