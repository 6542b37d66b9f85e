//! `psy server gc` against a real PostgreSQL: snapshots and blobs that no run newer than the
//! cutoff needs are removed; what a recent or active run names (its snapshot, that snapshot's
//! files, its results' logs) and whatever was uploaded after the cutoff are kept.

mod support;

use psy_server::testkit::{block_on, http};
use psy_snapshot::{sha256, Entry, EntryKind, Snapshot};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::fleet::{call, Fleet};

fn put(f: &Fleet, content: &str) -> String {
    let digest = sha256(content.as_bytes());
    let answer = http(
        f.addr(),
        "PUT",
        &format!("/api/blobs/{digest}"),
        Some(&f.user),
        Some(content),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    digest
}

/// A snapshot of `files` (their blobs uploaded); its digest.
fn snapshot(f: &Fleet, files: &[&str]) -> String {
    let entries = files
        .iter()
        .enumerate()
        .map(|(i, content)| Entry {
            path: format!("f{i}"),
            kind: EntryKind::File,
            mode: 0o644,
            digest: put(f, content),
            size: content.len() as u64,
        })
        .collect();
    let document = String::from_utf8(Snapshot::new(entries).canonical_json()).unwrap();
    let answer = http(
        f.addr(),
        "POST",
        "/api/snapshots",
        Some(&f.user),
        Some(&document),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str::<Value>(&answer.body).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A run of one job of snapshot `digest`, run and reported with log `log`; its id.
fn run_of(f: &Fleet, digest: &str, log: &str) -> i64 {
    let spec = json!({"source": {"snapshot": {"digest": digest}}, "manifest": "psyduck.toml", "test": "t"});
    let run = f.submit(
        0,
        json!([{"test_id": "t", "spec": spec, "cpu_millis": 1, "memory_bytes": 1}]),
    );
    let lease = f.claim("box", 1000, json!({}), 1).remove(0);
    let body = json!({"fencing_token": lease["fencing_token"], "status": "pass", "duration_ms": 1,
                      "logs": {"out": put(f, log)}});
    let (status, answer) = call(
        f.addr(),
        "POST",
        &format!("/api/leases/{}/result", lease["lease_id"]),
        &f.agent,
        Some(body),
    );
    assert_eq!(status, 200, "{answer}");
    run
}

fn digests(f: &Fleet, table: &str) -> BTreeSet<String> {
    block_on(async {
        let client = f.db.client().await.unwrap();
        let rows = client
            .query(&format!("SELECT digest FROM {table}"), &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    })
}

#[test]
fn gc_removes_what_no_recent_run_needs_and_keeps_the_rest() {
    let Some(f) = Fleet::new() else { return };
    let old_snapshot = snapshot(&f, &["only-old", "shared"]);
    let new_snapshot = snapshot(&f, &["only-new", "shared"]);
    let old_run = run_of(&f, &old_snapshot, "old log");
    run_of(&f, &new_snapshot, "new log");
    let orphan = put(&f, "never named");
    // Everything was uploaded 40 days ago; the old run was made and ended then too.
    block_on(async {
        let client = f.db.client().await.unwrap();
        client
            .batch_execute(&format!(
                "UPDATE blobs SET created_at = now() - interval '40 days';
                 UPDATE snapshots SET created_at = now() - interval '40 days';
                 UPDATE runs SET created_at = now() - interval '40 days',
                                 finished_at = now() - interval '40 days' WHERE run_id = {old_run};"
            ))
            .await
            .unwrap();
    });
    let fresh = put(&f, "uploaded just now, not named yet");

    let collected = block_on(psy_server::gc::collect(
        &f.db,
        Duration::from_secs(30 * 86400),
    ))
    .expect("gc");
    assert_eq!(
        (collected.snapshots, collected.blobs),
        (1, 3),
        "{collected:?}"
    );
    assert_eq!(
        collected.bytes,
        ("only-old".len() + "old log".len() + "never named".len()) as i64
    );
    assert_eq!(digests(&f, "snapshots"), BTreeSet::from([new_snapshot]));
    let kept: BTreeSet<String> = ["only-new", "shared", "new log"]
        .iter()
        .map(|c| sha256(c.as_bytes()))
        .chain([fresh])
        .collect();
    assert_eq!(digests(&f, "blobs"), kept);
    assert!(!digests(&f, "blobs").contains(&orphan));

    // Nothing more to do; with a cutoff of zero, only what active runs name would stay.
    let again = block_on(psy_server::gc::collect(
        &f.db,
        Duration::from_secs(30 * 86400),
    ))
    .unwrap();
    assert_eq!((again.snapshots, again.blobs), (0, 0));
    let all = block_on(psy_server::gc::collect(&f.db, Duration::ZERO)).unwrap();
    assert_eq!(
        (all.snapshots, all.blobs),
        (1, 4),
        "the new run is over too: nothing is needed any more"
    );
    assert!(digests(&f, "blobs").is_empty());
}
