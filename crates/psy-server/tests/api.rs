//! The server against a real PostgreSQL (`PSY_TEST_POSTGRES_URL`; `scripts/postgres-test-server`
//! starts one): migrations, the authentication rule on every documented route, roles, health
//! and metrics. Each test has a schema of its own. Without a database they skip with a printed
//! reason, except under CI where they fail.

mod support;

use psy_server::testkit::{block_on, http, TestSchema};
use psy_server::{token_store, Database, Role};
use support::TestServer;

const AGENT_BODY: &str =
    r#"{"name":"box-1","cpus":2.5,"memory_bytes":4294967296,"labels":{"arch":"x86_64"}}"#;

/// The documented operations that need a token: (method, path).
fn protected_operations() -> Vec<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(psy_server::api::openapi::DOCUMENT).expect("the OpenAPI document");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if !psy_server::auth::PUBLIC_PATHS.contains(&path.as_str()) {
                let path = path.replace("{id}", "1").replace(
                    "{digest}",
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                );
                ops.push((method.to_uppercase(), path));
            }
        }
    }
    assert!(
        ops.len() >= 3,
        "the document lists the protected routes: {ops:?}"
    );
    ops
}

fn token(db: &Database, role: Role, name: &str) -> String {
    block_on(token_store::create(db, role, name))
        .unwrap_or_else(|e| panic!("creating token {name:?}: {e}"))
        .1
}

#[test]
fn servers_started_together_migrate_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let db = schema.database();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                TestServer::start(db, true)
            })
        })
        .collect();
    let servers: Vec<TestServer> = starts
        .into_iter()
        .map(|s| s.join().expect("a server failed to start"))
        .collect();
    let db = schema.database();
    let versions: Vec<i32> = block_on(async {
        let client = db.client().await.expect("a connection");
        client
            .query(
                "SELECT version FROM server_schema_migrations ORDER BY version",
                &[],
            )
            .await
            .expect("reading the migrations")
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    let want: Vec<i32> = (1..=psy_server::migrate::MIGRATIONS.len() as i32).collect();
    assert_eq!(versions, want, "each migration recorded exactly once");
    let user = token(&db, Role::User, "reader");
    for server in &servers {
        let answer = http(server.addr, "GET", "/api/agents", Some(&user), None);
        assert_eq!(
            answer.status, 200,
            "GET /api/agents on {}: {}",
            server.addr, answer.body
        );
    }
}

#[test]
fn every_protected_route_refuses_missing_wrong_and_revoked_tokens() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let db = schema.database();
    let server = TestServer::start(db.clone(), true);
    let revoked = token(&db, Role::User, "old");
    block_on(token_store::revoke(&db, "old")).expect("revoking token \"old\"");
    let valid = token(&db, Role::User, "valid");
    let wrong = format!("{}x", &valid[..valid.len() - 1]);
    let mut ops = protected_operations();
    // Paths and methods that do not exist are refused the same way: nothing is told about them.
    ops.push(("GET".into(), "/api/no-such-route".into()));
    ops.push(("DELETE".into(), "/api/whoami".into()));
    ops.push(("GET".into(), "/elsewhere".into()));
    for (method, path) in &ops {
        let body = (method == "POST").then_some(AGENT_BODY);
        for (what, presented) in [
            ("no token", None),
            ("a wrong token", Some(wrong.as_str())),
            ("a revoked token", Some(revoked.as_str())),
            ("an empty token", Some("")),
        ] {
            let answer = http(server.addr, method, path, presented, body);
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {what}: {}",
                answer.body
            );
        }
        // And with a valid token the route exists (or is a 404/405 for the made-up ones).
        let answer = http(server.addr, method, path, Some(&valid), body);
        assert_ne!(
            answer.status, 401,
            "{method} {path} with a valid token: {}",
            answer.body
        );
    }
    let answer = http(server.addr, "GET", "/api/no-such-route", Some(&valid), None);
    assert_eq!(answer.status, 404, "{}", answer.body);
}

#[test]
fn roles_decide_what_a_token_may_do() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let db = schema.database();
    let server = TestServer::start(db.clone(), true);
    let agent = token(&db, Role::Agent, "agent-token");
    let user = token(&db, Role::User, "user-token");
    let a = server.addr;

    for (tok, role, name) in [
        (&agent, "agent", "agent-token"),
        (&user, "user", "user-token"),
    ] {
        let answer = http(a, "GET", "/api/whoami", Some(tok), None);
        assert_eq!(answer.status, 200, "whoami as {role}: {}", answer.body);
        let me: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        assert_eq!(me["role"], role);
        assert_eq!(me["name"], name);
    }

    // A user may not register, even with a bad body: the role is checked first.
    let answer = http(
        a,
        "POST",
        "/api/agents/register",
        Some(&user),
        Some(AGENT_BODY),
    );
    assert_eq!(answer.status, 403, "register as user: {}", answer.body);
    let answer = http(a, "POST", "/api/agents/register", Some(&user), Some("{"));
    assert_eq!(
        answer.status, 403,
        "register as user, bad body: {}",
        answer.body
    );
    let answer = http(a, "POST", "/api/agents/register", Some(&agent), Some("{"));
    assert_eq!(answer.status, 400, "register, bad body: {}", answer.body);
    let answer = http(
        a,
        "POST",
        "/api/agents/register",
        Some(&agent),
        Some(r#"{"name":"x","cpus":0,"memory_bytes":1}"#),
    );
    assert_eq!(answer.status, 400, "register with no cpus: {}", answer.body);

    let answer = http(
        a,
        "POST",
        "/api/agents/register",
        Some(&agent),
        Some(AGENT_BODY),
    );
    assert_eq!(answer.status, 200, "register as agent: {}", answer.body);
    // Again, with other capacity: updated, not duplicated.
    let again = AGENT_BODY.replace("2.5", "1.25");
    let answer = http(
        a,
        "POST",
        "/api/agents/register",
        Some(&agent),
        Some(&again),
    );
    assert_eq!(answer.status, 200, "register again: {}", answer.body);

    let answer = http(a, "GET", "/api/agents", Some(&agent), None);
    assert_eq!(answer.status, 403, "list agents as agent: {}", answer.body);
    let answer = http(a, "GET", "/api/agents", Some(&user), None);
    assert_eq!(answer.status, 200, "list agents as user: {}", answer.body);
    let agents: Vec<psy_server::api::agents::Agent> =
        serde_json::from_str(&answer.body).expect("a list of agents");
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0].name, "box-1");
    assert_eq!(agents[0].cpus, 1.25);
    assert_eq!(agents[0].memory_bytes, 4 << 30);
    assert_eq!(
        agents[0].labels.get("arch").map(String::as_str),
        Some("x86_64")
    );
    assert_eq!(agents[0].token, "agent-token");
}

#[test]
fn health_metrics_and_the_document_need_no_token_and_requests_are_counted() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let db = schema.database();
    let server = TestServer::start(db.clone(), true);
    let user = token(&db, Role::User, "counter");
    let a = server.addr;
    assert_eq!(http(a, "GET", "/healthz", None, None).status, 200);
    let doc = http(a, "GET", "/api/openapi.json", None, None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body, psy_server::api::openapi::DOCUMENT);
    for _ in 0..3 {
        assert_eq!(http(a, "GET", "/api/whoami", Some(&user), None).status, 200);
    }
    assert_eq!(http(a, "GET", "/api/whoami", None, None).status, 401);
    let metrics = http(a, "GET", "/metrics", None, None);
    assert_eq!(metrics.status, 200);
    for line in [
        "psy_server_http_requests_total{route=\"/api/whoami\",method=\"GET\",status=\"200\"} 3\n",
        "psy_server_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"401\"} 1\n",
        "psy_server_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1\n",
        "psy_server_database_up 1\n",
    ] {
        assert!(
            metrics.body.contains(line),
            "no {line:?} in:\n{}",
            metrics.body
        );
    }
}

/// Needs no PostgreSQL: the server starts against a database that is down and says so.
#[test]
fn healthz_is_503_while_the_database_is_down() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let db = Database::new(
        &format!("postgres://psy@127.0.0.1:{port}/none"),
        "psyduck",
        2,
    )
    .expect("a valid URL");
    let server = TestServer::start(db, false);
    let health = http(server.addr, "GET", "/healthz", None, None);
    assert_eq!(health.status, 503, "{}", health.body);
    let metrics = http(server.addr, "GET", "/metrics", None, None);
    assert!(
        metrics.body.contains("psy_server_database_up 0\n"),
        "{}",
        metrics.body
    );
    // A token cannot be checked: unavailable, not unauthorized.
    let answer = http(server.addr, "GET", "/api/whoami", Some("anything"), None);
    assert_eq!(answer.status, 503, "{}", answer.body);
}
