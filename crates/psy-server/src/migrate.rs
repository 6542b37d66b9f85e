//! The server's own tables and their forward-only migrations, recorded in
//! `server_schema_migrations` beside the results store's `schema_migrations`.
//!
//! Why a list of its own rather than entries in psy-store's: the results store is synchronous
//! and optional (SQLite by default), the server is async and always PostgreSQL; two version
//! tables let either crate release migrations without the other. They share the schema and the
//! advisory lock (`hashtext('psyduck migrations ' || schema)`, the key psy-store takes), so a
//! server and a results store migrating one schema at once take turns, and several servers
//! starting together apply each step exactly once: all steps run in one transaction under
//! `pg_advisory_xact_lock`, and whoever comes second finds them done.
//!
//! Migration `i` (0-based) takes the server schema from version `i` to `i + 1`. Released
//! migrations are never edited: a change is a new entry at the end.

use crate::{Database, ServerError};

/// Every server migration, oldest first.
pub const MIGRATIONS: &[&str] = &[
    V1,
    crate::queue::schema::V2,
    crate::blobs::V3,
    crate::queue::schema::V4,
    crate::queue::schema::V5,
    crate::queue::schema::V6,
    crate::queue::schema::V7,
    crate::queue::schema::V8,
];

/// Version 1: API tokens (only their SHA-256 is kept) and registered agents.
const V1: &str = r#"
CREATE TABLE api_tokens (
    token_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'user')),
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

CREATE TABLE agents (
    name          TEXT PRIMARY KEY,
    token_id      BIGINT NOT NULL REFERENCES api_tokens (token_id),
    millicpus     BIGINT NOT NULL CHECK (millicpus > 0),
    memory_bytes  BIGINT NOT NULL CHECK (memory_bytes > 0),
    labels        JSONB NOT NULL DEFAULT '{}',
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#;

/// Creates the schema if needed and brings the server's tables up to `migrations.len()`.
pub async fn migrate(db: &Database, migrations: &[&str]) -> Result<(), ServerError> {
    let supported = migrations.len() as u32;
    let described = db.described().to_string();
    let schema = db.schema();
    let read_err = |source| db.query_error("reading the server schema version", source);
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(read_err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('psyduck migrations ' || $1))",
        &[&schema],
    )
    .await
    .map_err(read_err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS \"{schema}\".server_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(read_err)?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM \"{schema}\".server_schema_migrations"),
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(read_err)?;
    let current = current.max(0) as u32;
    if current > supported {
        return Err(ServerError::SchemaTooNew {
            database: described,
            found: current,
            supported,
        });
    }
    for version in current..supported {
        let step_err = |error| ServerError::Migrate {
            database: described.clone(),
            from: version,
            to: version + 1,
            error,
        };
        tracing::info!(database = %described, from = version, to = version + 1, "migrating server tables");
        tx.batch_execute(migrations[version as usize])
            .await
            .map_err(step_err)?;
        tx.execute(
            &format!("INSERT INTO \"{schema}\".server_schema_migrations (version) VALUES ($1)"),
            &[&((version + 1) as i32)],
        )
        .await
        .map_err(step_err)?;
    }
    tx.commit().await.map_err(|error| ServerError::Migrate {
        database: described.clone(),
        from: current,
        to: supported,
        error,
    })
}
