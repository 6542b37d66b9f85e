//! Blobs and snapshots against a real PostgreSQL (`PSY_TEST_POSTGRES_URL`): uploads checked
//! and deduplicated, the missing-list answer, snapshots refused while a blob is missing, and
//! who may read and write. Skips without a database, except under CI.

mod support;

use psy_server::testkit::{block_on, http, Answer, TestSchema};
use psy_server::{token_store, Database, Role};
use psy_snapshot::{sha256, Entry, EntryKind, Snapshot};
use std::net::SocketAddr;
use support::TestServer;

fn token(db: &Database, role: Role, name: &str) -> String {
    block_on(token_store::create(db, role, name))
        .unwrap_or_else(|e| panic!("creating token {name:?}: {e}"))
        .1
}

fn ok(answer: Answer, what: &str) -> serde_json::Value {
    assert_eq!(answer.status, 200, "{what}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{what}: {e}: {}", answer.body))
}

fn missing(addr: SocketAddr, token: &str, digests: &[&str]) -> Vec<String> {
    let body = serde_json::json!({ "digests": digests }).to_string();
    let answer = http(addr, "POST", "/api/blobs/missing", Some(token), Some(&body));
    serde_json::from_value(ok(answer, "missing")["missing"].clone()).unwrap()
}

fn file(path: &str, content: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: EntryKind::File,
        mode: 0o644,
        digest: sha256(content.as_bytes()),
        size: content.len() as u64,
    }
}

#[test]
fn blobs_are_checked_deduplicated_and_snapshots_need_all_of_theirs() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let db = schema.database();
    let server = TestServer::start(db.clone(), true);
    let a = server.addr;
    let user = token(&db, Role::User, "alice");
    let agent = token(&db, Role::Agent, "box");
    let (one, two) = ("first file\n", "second file\n");
    let (d1, d2) = (sha256(one.as_bytes()), sha256(two.as_bytes()));

    assert_eq!(missing(a, &user, &[&d2, &d1]), [d2.clone(), d1.clone()]);
    let put = |tok: &str, digest: &str, content: &str| {
        http(
            a,
            "PUT",
            &format!("/api/blobs/{digest}"),
            Some(tok),
            Some(content),
        )
    };
    let stored = ok(put(&user, &d1, one), "put");
    assert_eq!(stored["created"], true);
    assert_eq!(stored["size"], one.len());
    let again = ok(put(&user, &d1, one), "put again");
    assert_eq!(again["created"], false, "idempotent");
    let wrong = put(&user, &d2, one);
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong.body.contains(&d1),
        "names the content's digest: {}",
        wrong.body
    );
    let bad = put(&user, "sha256:nothex", one);
    assert_eq!(bad.status, 400, "{}", bad.body);
    let log = "an attempt's log";
    let stored = ok(
        put(&agent, &sha256(log.as_bytes()), log),
        "agents upload logs",
    );
    assert_eq!(stored["created"], true);
    assert_eq!(missing(a, &user, &[&d1, &d2]), std::slice::from_ref(&d2));

    let got = http(a, "GET", &format!("/api/blobs/{d1}"), Some(&agent), None);
    assert_eq!(
        (got.status, got.body.as_str()),
        (200, one),
        "agents read blobs"
    );
    let got = http(a, "GET", &format!("/api/blobs/{d2}"), Some(&user), None);
    assert_eq!(got.status, 404, "{}", got.body);

    let snapshot = Snapshot::new(vec![file("a.txt", one), file("dir/b.txt", two)]);
    let document = String::from_utf8(snapshot.canonical_json()).unwrap();
    let refused = http(a, "POST", "/api/snapshots", Some(&user), Some(&document));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains(&d2) && refused.body.contains("dir/b.txt"),
        "names the missing blob and its path: {}",
        refused.body
    );
    ok(put(&user, &d2, two), "put the second");
    let created = ok(
        http(a, "POST", "/api/snapshots", Some(&user), Some(&document)),
        "snapshot",
    );
    assert_eq!(created["digest"], snapshot.digest());
    assert_eq!(created["files"], 2);
    assert_eq!(created["created"], true);
    let path = format!("/api/snapshots/{}", snapshot.digest());
    for tok in [&user, &agent] {
        let got = http(a, "GET", &path, Some(tok), None);
        assert_eq!(got.status, 200, "{}", got.body);
        let back = Snapshot::from_json(got.body.as_bytes(), Some(&snapshot.digest())).unwrap();
        assert_eq!(back, snapshot);
    }
    let unknown = Snapshot::new(vec![file("x", "x")]).digest();
    let got = http(
        a,
        "GET",
        &format!("/api/snapshots/{unknown}"),
        Some(&user),
        None,
    );
    assert_eq!(got.status, 404, "{}", got.body);
    assert_eq!(
        http(a, "POST", "/api/snapshots", Some(&agent), Some(&document)).status,
        403
    );

    // Hostile paths never get in, even with every blob stored.
    let hostile = format!(
        r#"{{"version":1,"entries":[{{"path":"../escape","kind":"file","mode":420,"digest":"{d1}","size":11}}]}}"#
    );
    let answer = http(a, "POST", "/api/snapshots", Some(&user), Some(&hostile));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("../escape"), "{}", answer.body);

    // Stored once each, whatever was put twice (the two files and the agent's log).
    let count: i64 = block_on(async {
        let client = db.client().await.unwrap();
        client
            .query_one("SELECT count(*) FROM blobs", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(count, 3);
}
