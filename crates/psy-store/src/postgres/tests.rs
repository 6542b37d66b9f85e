//! Tests of the PostgreSQL store against a real server named by `PSY_TEST_POSTGRES_URL`
//! (`scripts/postgres-test-server` starts a throwaway one; `scripts/test` does so for CI). Each
//! test works in a schema of its own, dropped at the end, so tests run in parallel. Without a
//! reachable server they are skipped with a printed reason, except under CI, where they fail.

use super::{schema, PgStore};
use crate::conformance::{conformance_tests, Fixture};
use crate::{Store, StoreError};
use std::sync::atomic::{AtomicU32, Ordering};

const URL_ENV: &str = "PSY_TEST_POSTGRES_URL";

/// The test server's URL, or `None` (after saying why) when tests may skip.
fn server_url() -> Option<String> {
    let reason = match std::env::var(URL_ENV) {
        Ok(url) => match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(_) => return Some(url),
            Err(e) => format!(
                "cannot connect to {URL_ENV}={}: {e}",
                super::url::redact(&url)
            ),
        },
        Err(_) => format!("{URL_ENV} is not set (scripts/postgres-test-server starts a server)"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL tests cannot run under CI: {reason}");
    }
    eprintln!("skipping a PostgreSQL test: {reason}");
    None
}

/// A schema name no other test (in this or another process) uses.
fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "psy_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops its schema when the test ends, pass or fail.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let dropped = postgres::Client::connect(&self.url, postgres::NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                schema::quote_ident(&self.schema)
            ))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.schema);
        }
    }
}

/// A store in a fresh schema, and the guard that drops it.
fn pg_store() -> Option<(DropSchema, PgStore)> {
    let url = server_url()?;
    let schema = fresh_schema();
    let guard = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = PgStore::connect_to_schema(&url, &schema)
        .unwrap_or_else(|e| panic!("connecting to the test server: {e:#?}"));
    Some((guard, store))
}

/// The conformance suite on PostgreSQL.
mod conformance {
    use super::*;

    conformance_tests!(|| {
        let (guard, store) = pg_store()?;
        Some(Fixture {
            store: Box::new(store),
            _guard: Box::new(guard),
        })
    });
}

fn version(url: &str, schema: &str) -> i32 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(
        &format!(
            "SELECT MAX(version) FROM {}.schema_migrations",
            schema::quote_ident(schema)
        ),
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn several_processes_migrating_one_schema_at_once_apply_each_step_once() {
    let Some((guard, first)) = pg_store() else {
        return;
    };
    let (url, schema_name) = (guard.url.clone(), guard.schema.clone());
    drop(first);
    // Start again from nothing, then let eight connections race to migrate.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "DROP SCHEMA {} CASCADE",
        schema::quote_ident(&schema_name)
    ))
    .unwrap();
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let (url, schema_name) = (url.clone(), schema_name.clone());
            std::thread::spawn(move || PgStore::connect_to_schema(&url, &schema_name).map(drop))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    assert_eq!(version(&url, &schema_name), schema::MIGRATIONS.len() as i32);
    let steps: i64 = c
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM {}.schema_migrations",
                schema::quote_ident(&schema_name)
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(steps, schema::MIGRATIONS.len() as i64);
}

#[test]
fn later_migrations_apply_once_in_order_and_failures_roll_back() {
    let Some((guard, store)) = pg_store() else {
        return;
    };
    drop(store);
    let mut c = postgres::Client::connect(&guard.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "SET search_path TO {}",
        schema::quote_ident(&guard.schema)
    ))
    .unwrap();
    let db = "test db";
    let mut steps = schema::MIGRATIONS.to_vec();
    steps.push("CREATE TABLE extra (x BIGINT); INSERT INTO extra VALUES (7);");
    schema::migrate(&mut c, db, &guard.schema, &steps).unwrap();
    schema::migrate(&mut c, db, &guard.schema, &steps).unwrap();
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM extra", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "a step ran twice");

    steps.push("NOT SQL");
    let err = schema::migrate(&mut c, db, &guard.schema, &steps).unwrap_err();
    let v = steps.len() as u32 - 1;
    assert!(
        matches!(err, StoreError::Migrate { from, to, .. } if from == v && to == v + 1),
        "{err:?}"
    );
    assert_eq!(version(&guard.url, &guard.schema), v as i32);
}

#[test]
fn newer_schema_is_refused() {
    let Some((guard, store)) = pg_store() else {
        return;
    };
    drop(store);
    let mut c = postgres::Client::connect(&guard.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "INSERT INTO {}.schema_migrations (version) VALUES (99)",
        schema::quote_ident(&guard.schema)
    ))
    .unwrap();
    let err = PgStore::connect_to_schema(&guard.url, &guard.schema).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&guard.schema), "{err}");
}

#[test]
fn connect_errors_name_the_url_without_its_password() {
    // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://psy:hunter2@127.0.0.1:1/psy";
    let err = PgStore::connect(url).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(msg.contains("postgres://psy:***@127.0.0.1:1/psy"), "{msg}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("connect"), "{cause}");
}

#[test]
fn a_database_shared_by_two_stores_sees_both_writes() {
    let Some((guard, mut a)) = pg_store() else {
        return;
    };
    let mut b = PgStore::connect_to_schema(&guard.url, &guard.schema).unwrap();
    a.begin_run(&crate::conformance::run("from-a", 1)).unwrap();
    b.begin_run(&crate::conformance::run("from-b", 2)).unwrap();
    let names: Vec<String> = a
        .runs(10)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id.0)
        .collect();
    assert_eq!(names, ["from-b", "from-a"]);
}
