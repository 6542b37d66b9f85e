//! The work queue's test fleet: a migrated schema, a server on it, a token of each role, and
//! the requests the queue's tests make. Lease expiry is forced by moving `expires_at` into the
//! past, so no test waits for a clock.
#![allow(dead_code)] // each test binary uses its own part

use super::TestServer;
use psy_server::testkit::{block_on, http, TestSchema};
use psy_server::{token_store, Database, Role};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A migrated schema, a server on it, and a token of each role.
pub(crate) struct Fleet {
    pub(crate) db: Database,
    pub(crate) server: TestServer,
    pub(crate) user: String,
    pub(crate) agent: String,
    // Dropped last: the schema outlives the server.
    _schema: TestSchema,
}

impl Fleet {
    pub(crate) fn new() -> Option<Fleet> {
        let schema = TestSchema::new()?;
        let db = schema.database();
        let server = TestServer::start(db.clone(), true);
        let token = |role, name: &str| {
            block_on(token_store::create(&db, role, name))
                .expect(name)
                .1
        };
        Some(Fleet {
            user: token(Role::User, "alice"),
            agent: token(Role::Agent, "rack"),
            server,
            db,
            _schema: schema,
        })
    }

    /// A new token of `role` named `name`.
    pub(crate) fn token(&self, role: Role, name: &str) -> String {
        block_on(token_store::create(&self.db, role, name))
            .expect(name)
            .1
    }

    /// Registers agent `name` with `token`.
    pub(crate) fn register(&self, token: &str, name: &str) {
        let body = json!({"name": name, "cpus": 2, "memory_bytes": 1i64 << 30});
        let (status, answer) = call(
            self.addr(),
            "POST",
            "/api/agents/register",
            token,
            Some(body),
        );
        assert_eq!(status, 200, "registering {name}: {answer}");
    }

    /// The server's `/metrics` text.
    pub(crate) fn metrics(&self) -> String {
        http(self.addr(), "GET", "/metrics", None, None).body
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Submits `jobs` at `priority`; the run id.
    pub(crate) fn submit(&self, priority: i32, jobs: Value) -> i64 {
        let (status, body) = call(
            self.addr(),
            "POST",
            "/api/runs",
            &self.user,
            Some(json!({"priority": priority, "jobs": jobs})),
        );
        assert_eq!(status, 200, "submit: {body}");
        body["run_id"].as_i64().expect("a run id")
    }

    pub(crate) fn claim(&self, agent: &str, cpu: i64, labels: Value, max_jobs: u32) -> Vec<Value> {
        claim(self.addr(), &self.agent, agent, cpu, labels, max_jobs)
    }

    pub(crate) fn report(&self, lease: &Value, status: &str) -> (u16, Value) {
        report(self.addr(), &self.agent, lease, status)
    }

    pub(crate) fn run(&self, run_id: i64) -> Value {
        let (status, body) = call(
            self.addr(),
            "GET",
            &format!("/api/runs/{run_id}"),
            &self.user,
            None,
        );
        assert_eq!(status, 200, "show run {run_id}: {body}");
        body
    }

    pub(crate) fn sql_count(&self, sql: &str) -> i64 {
        block_on(async {
            let client = self.db.client().await.expect("a connection");
            client.query_one(sql, &[]).await.expect(sql).get(0)
        })
    }

    /// Moves every held lease's expiry into the past, as if its agent had gone silent.
    pub(crate) fn expire_leases(&self) {
        block_on(async {
            let client = self.db.client().await.expect("a connection");
            client
                .execute("UPDATE leases SET expires_at = now() - interval '1 second' WHERE outcome IS NULL", &[])
                .await
                .expect("expiring leases");
        });
    }
}

pub(crate) fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let answer = http(addr, method, path, Some(token), text.as_deref());
    let value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e} in {:?}", answer.body));
    (answer.status, value)
}

pub(crate) fn claim(
    addr: SocketAddr,
    token: &str,
    agent: &str,
    cpu: i64,
    labels: Value,
    max_jobs: u32,
) -> Vec<Value> {
    let request = json!({"agent": agent, "cpu_millis": cpu, "memory_bytes": 1i64 << 30, "labels": labels, "max_jobs": max_jobs});
    let (status, body) = call(addr, "POST", "/api/agents/claim", token, Some(request));
    assert_eq!(status, 200, "claim by {agent}: {body}");
    body["leases"].as_array().expect("leases").clone()
}

pub(crate) fn report(addr: SocketAddr, token: &str, lease: &Value, status: &str) -> (u16, Value) {
    report_as(addr, token, lease, status, None)
}

/// Reports `status` for `lease` with `token`, naming the reporting `agent` when given.
pub(crate) fn report_as(
    addr: SocketAddr,
    token: &str,
    lease: &Value,
    status: &str,
    agent: Option<&str>,
) -> (u16, Value) {
    let path = format!("/api/leases/{}/result", lease["lease_id"]);
    let mut body = json!({"fencing_token": lease["fencing_token"], "status": status, "duration_ms": 12, "exit_code": 0, "output": "ok\n"});
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    call(addr, "POST", &path, token, Some(body))
}

pub(crate) fn heartbeat(f: &Fleet, lease: &Value) -> (u16, Value) {
    heartbeat_as(f.addr(), &f.agent, lease, None)
}

/// A heartbeat of `lease` with `token`, naming the `agent` when given.
pub(crate) fn heartbeat_as(
    addr: SocketAddr,
    token: &str,
    lease: &Value,
    agent: Option<&str>,
) -> (u16, Value) {
    let path = format!("/api/leases/{}/heartbeat", lease["lease_id"]);
    let mut body = json!({"fencing_token": lease["fencing_token"]});
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    call(addr, "POST", &path, token, Some(body))
}

/// `n` jobs `t0..` needing `cpu` millis each, expected to take `expected(i)` ms.
pub(crate) fn jobs(n: usize, cpu: i64, expected: impl Fn(usize) -> i64) -> Value {
    (0..n)
        .map(|i| json!({"test_id": format!("t{i}"), "spec": {"command": ["true"], "i": i}, "cpu_millis": cpu, "memory_bytes": 1 << 20, "expected_ms": expected(i)}))
        .collect()
}

pub(crate) fn test_ids(leases: &[Value]) -> Vec<String> {
    leases
        .iter()
        .map(|l| l["test_id"].as_str().expect("test_id").to_string())
        .collect()
}
