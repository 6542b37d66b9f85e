//! The PostgreSQL schema and its forward-only migrations, recorded in `schema_migrations`.
//!
//! Everything Psyduck keeps lives in one PostgreSQL schema (`psyduck` unless told otherwise),
//! so a database can be shared with other applications and tests can each take a schema of
//! their own. The results tables come first; the fleet's queue (jobs, leases, agents, tokens)
//! will be later migrations in the same schema, so one transaction can claim an attempt and
//! record its result.
//!
//! Migration `i` (0-based) takes the schema from version `i` to `i + 1`. Released migrations
//! are never edited: a change is a new entry at the end. All steps run in one transaction under
//! `pg_advisory_xact_lock`, so several servers opening one database at once apply each step
//! exactly once and none sees a half-migrated schema.

use crate::StoreError;
use postgres::Client;

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2];

/// Version 1: runs, per-test verdicts, attempts and imported durations, as SQLite's version 5.
///
/// Ids are `COLLATE "C"` so ordering and prefix ranges compare bytes, as SQLite does, whatever
/// the database's locale. `attempts.seq` breaks ties in start time by insertion order (SQLite's
/// rowid). Paths are BYTEA: a path that is not UTF-8 survives unchanged.
const V1: &str = r#"
CREATE TABLE runs (
    run_id         TEXT COLLATE "C" PRIMARY KEY,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    state          TEXT NOT NULL CHECK (state IN ('running', 'finished', 'aborted', 'interrupted')),
    manifest       TEXT NOT NULL,
    command_line   TEXT NOT NULL,
    host           TEXT NOT NULL,
    note           TEXT,
    total          BIGINT NOT NULL DEFAULT 0,
    passed         BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    flaky          BIGINT NOT NULL DEFAULT 0,
    timed_out      BIGINT NOT NULL DEFAULT 0,
    oom            BIGINT NOT NULL DEFAULT 0,
    errors         BIGINT NOT NULL DEFAULT 0,
    not_run        BIGINT NOT NULL DEFAULT 0,
    skipped        BIGINT NOT NULL DEFAULT 0,
    duration_ms    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_start ON runs (started_at_ms DESC, run_id DESC);
CREATE INDEX runs_running ON runs (run_id) WHERE state = 'running';

CREATE TABLE tests (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    test_id     TEXT COLLATE "C" NOT NULL,
    name        TEXT NOT NULL,
    variant     TEXT,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, test_id)
);

CREATE TABLE attempts (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id             TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    test_id            TEXT COLLATE "C" NOT NULL,
    attempt            BIGINT NOT NULL,
    status             TEXT NOT NULL,
    exit_code          BIGINT,
    signal             BIGINT,
    started_at_ms      BIGINT NOT NULL,
    duration_ms        BIGINT NOT NULL,
    cpu_time_ms        BIGINT,
    peak_memory_bytes  BIGINT,
    io_read_bytes      BIGINT,
    io_write_bytes     BIGINT,
    io_read_ops        BIGINT,
    io_write_ops       BIGINT,
    net_sent_bytes     BIGINT,
    net_received_bytes BIGINT,
    stdout_path        BYTEA NOT NULL,
    stderr_path        BYTEA NOT NULL,
    message            TEXT,
    UNIQUE (run_id, test_id, attempt)
);
CREATE INDEX attempts_history ON attempts (test_id, started_at_ms DESC, seq DESC)
    INCLUDE (status, duration_ms);

CREATE TABLE imported_durations (
    test_id     TEXT COLLATE "C" PRIMARY KEY,
    duration_us BIGINT NOT NULL
);
"#;

/// Version 2: the image each attempt ran in (NULL: the host's root).
const V2: &str = "ALTER TABLE attempts ADD COLUMN image TEXT;";

/// Creates `schema` if needed and brings it up to `migrations.len()`.
pub(super) fn migrate(
    client: &mut Client,
    database: &str,
    schema: &str,
    migrations: &[&str],
) -> Result<(), StoreError> {
    let supported = migrations.len() as u32;
    let read_err = |source: postgres::Error| StoreError::Query {
        database: database.to_string(),
        op: "reading the schema version".to_string(),
        source: source.into(),
    };
    let mut tx = client.transaction().map_err(read_err)?;
    // One lock per schema: servers of other schemas in the same database do not wait.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('psyduck migrations ' || $1))",
        &[&schema],
    )
    .map_err(read_err)?;
    let quoted = quote_ident(schema);
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .map_err(read_err)?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {quoted}.schema_migrations"),
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(read_err)?;
    let current = current.max(0) as u32;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            database: database.to_string(),
            found: current,
            supported,
        });
    }
    for version in current..supported {
        let step_err = |source: postgres::Error| StoreError::Migrate {
            database: database.to_string(),
            from: version,
            to: version + 1,
            source: source.into(),
        };
        tracing::info!(
            database,
            from = version,
            to = version + 1,
            "migrating results database"
        );
        tx.batch_execute(migrations[version as usize])
            .map_err(step_err)?;
        tx.execute(
            &format!("INSERT INTO {quoted}.schema_migrations (version) VALUES ($1)"),
            &[&((version + 1) as i32)],
        )
        .map_err(step_err)?;
    }
    tx.commit().map_err(|source| StoreError::Migrate {
        database: database.to_string(),
        from: current,
        to: supported,
        source: source.into(),
    })
}

/// `name` as a quoted SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
