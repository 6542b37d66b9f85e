//! The database going away under a server, against PostgreSQL clusters of the tests' own
//! (stopped and started again; the shared test server is left alone): every request that
//! needs the database is a 503 with `Retry-After` and an error naming what failed, never a
//! 500 or a hang; once it is back the same requests succeed and the run completes. A server
//! started while its database is down serves 503 and migrates as soon as it comes up.

mod support;

use psy_server::testkit::cluster::OwnCluster;
use psy_server::testkit::{block_on, http, Answer};
use psy_server::{token_store, Database, Role};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::fleet::{call, claim, jobs, report};
use support::TestServer;

/// Asserts `answer` is the 503 of a database that is down, naming `what` failed.
fn unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{}\n{}", answer.head, answer.body);
    assert_eq!(answer.header("retry-after"), Some("2"), "{}", answer.head);
    let body: Value = serde_json::from_str(&answer.body).expect("a JSON error");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.contains("database is unavailable") && error.contains(what),
        "{error}"
    );
    assert!(!error.contains("password"), "{error}");
}

/// Calls until the answer is not a 503 (the pool reconnecting after the database came back),
/// at most 100 times; the last answer.
fn once_up(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    for _ in 0..100 {
        let (status, answer) = call(addr, method, path, token, body.clone());
        if status != 503 {
            return (status, answer);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{method} {path} still 503 after the database came back");
}

#[test]
fn requests_are_503_while_the_database_is_down_and_the_run_completes_after() {
    let Some(cluster) = OwnCluster::start() else {
        return;
    };
    let db = Database::new(&cluster.url(), "psyduck", 4).expect("the cluster's URL");
    let server = TestServer::start(db.clone(), true);
    let a = server.addr;
    let token = |role, name| {
        block_on(token_store::create(&db, role, name))
            .expect(name)
            .1
    };
    let (user, agent) = (token(Role::User, "alice"), token(Role::Agent, "rack"));
    let (status, submitted) = call(
        a,
        "POST",
        "/api/runs",
        &user,
        Some(json!({"jobs": jobs(4, 100, |_| 0)})),
    );
    assert_eq!(status, 200, "{submitted}");
    let run = submitted["run_id"].as_i64().expect("a run id");
    let mut leases = claim(a, &agent, "box", 1000, json!({}), 2);
    assert_eq!(leases.len(), 2);
    assert_eq!(report(a, &agent, &leases.remove(0), "pass").0, 200);

    cluster.stop();
    let lease = leases.remove(0);
    let result =
        json!({"fencing_token": lease["fencing_token"], "status": "pass", "duration_ms": 1});
    let requests: [(&str, String, &str, Option<Value>); 4] = [
        ("GET", format!("/api/runs/{run}"), user.as_str(), None),
        (
            "POST",
            "/api/agents/claim".into(),
            agent.as_str(),
            Some(
                json!({"agent": "box", "cpu_millis": 1000, "memory_bytes": 1 << 30, "max_jobs": 2}),
            ),
        ),
        (
            "POST",
            format!("/api/leases/{}/result", lease["lease_id"]),
            agent.as_str(),
            Some(result.clone()),
        ),
        ("GET", "/api/runs".into(), user.as_str(), None),
    ];
    for (method, path, token, body) in &requests {
        let text = body.as_ref().map(Value::to_string);
        let answer = http(a, method, path, Some(token), text.as_deref());
        // What failed: connecting to the database (named without a password), for the token.
        unavailable(&answer, "cannot connect to postgres://postgres@127.0.0.1");
    }
    let health = http(a, "GET", "/healthz", None, None);
    assert_eq!(
        (health.status, health.header("retry-after")),
        (503, Some("2"))
    );

    cluster.restart();
    let (status, answer) = once_up(
        a,
        "POST",
        &format!("/api/leases/{}/result", lease["lease_id"]),
        &agent,
        Some(result),
    );
    assert_eq!(status, 200, "the result held over the outage: {answer}");
    let rest = claim(a, &agent, "box", 1000, json!({}), 4);
    assert_eq!(rest.len(), 2, "the jobs not claimed before the outage");
    for lease in &rest {
        assert_eq!(report(a, &agent, lease, "pass").0, 200);
    }
    let (status, detail) = once_up(a, "GET", &format!("/api/runs/{run}"), &user, None);
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["run"]["state"], "done", "{detail}");
    assert_eq!(detail["run"]["jobs"]["done"], 4, "{detail}");
    assert_eq!(http(a, "GET", "/healthz", None, None).status, 200);
}

#[test]
fn a_server_started_while_the_database_is_down_serves_once_it_is_up() {
    let Some(cluster) = OwnCluster::start() else {
        return;
    };
    cluster.stop();
    let db = Database::new(&cluster.url(), "psyduck", 4).expect("the cluster's URL");
    let server = TestServer::start_migrating(db.clone());
    let a = server.addr;
    let health = http(a, "GET", "/healthz", None, None);
    assert_eq!(
        (health.status, health.header("retry-after")),
        (503, Some("2")),
        "{}",
        health.body
    );
    let answer = http(a, "GET", "/api/whoami", Some("any"), None);
    unavailable(&answer, "has not applied its migrations");

    cluster.restart();
    let mut healthy = false;
    for _ in 0..200 {
        if http(a, "GET", "/healthz", None, None).status == 200 {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        healthy,
        "the server never migrated after the database came up"
    );
    let (_, user) = block_on(token_store::create(&db, Role::User, "alice")).expect("a token");
    let (status, who) = call(a, "GET", "/api/whoami", &user, None);
    assert_eq!(
        (status, who["name"].as_str()),
        (200, Some("alice")),
        "{who}"
    );
}
