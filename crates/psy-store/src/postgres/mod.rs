//! The PostgreSQL implementation of [`crate::Store`], for a fleet of servers and agents sharing
//! one database (`--features postgres`). Every write is one statement in autocommit mode, as in
//! SQLite; the schema is migrated at connect ([`schema`]).
//!
//! The connection is plain TCP or a Unix socket (no TLS yet).

mod columns;
mod schema;
mod store;
#[cfg(test)]
mod tests;
mod url;

use crate::StoreError;
use postgres::{Client, NoTls, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

/// The PostgreSQL schema Psyduck's tables live in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "psyduck";

/// A results database in a PostgreSQL schema.
pub struct PgStore {
    /// Reads take `&self` in the [`crate::Store`] trait but a client needs `&mut`; a store is
    /// used from one thread at a time (`Send`, not `Sync`), so a `RefCell` never conflicts.
    conn: RefCell<Conn>,
    /// The URL (password hidden) and schema, rendered once for error messages.
    database: String,
}

struct Conn {
    client: Client,
    /// Statements prepared on this connection, by SQL text: one round trip per write.
    prepared: HashMap<String, Statement>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or a
    /// `key=value` string) and migrates the [`DEFAULT_SCHEMA`] schema.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_to_schema(url, DEFAULT_SCHEMA)
    }

    /// Connects to `url` and keeps every table in `schema` (created if needed).
    pub fn connect_to_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let database = format!("{} (schema {schema})", url::redact(url));
        let open_err = |source: postgres::Error| StoreError::Open {
            database: database.clone(),
            source: source.into(),
        };
        let mut client = Client::connect(url, NoTls).map_err(open_err)?;
        client
            .batch_execute(&format!(
                "SET search_path TO {}",
                schema::quote_ident(schema)
            ))
            .map_err(open_err)?;
        schema::migrate(&mut client, &database, schema, schema::MIGRATIONS)?;
        tracing::debug!(database = %database, "opened results database");
        Ok(PgStore {
            conn: RefCell::new(Conn {
                client,
                prepared: HashMap::new(),
            }),
            database,
        })
    }

    /// Where this store is, for messages: the URL without its password, and the schema.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn query_error(&self, op: String, source: postgres::Error) -> StoreError {
        StoreError::Query {
            database: self.database.clone(),
            op,
            source: source.into(),
        }
    }

    fn invalid(&self, op: String, bad: crate::columns::Invalid) -> StoreError {
        StoreError::InvalidValue {
            database: self.database.clone(),
            op,
            column: bad.column,
            value: bad.value,
        }
    }

    /// Runs `f` on `sql` prepared once per connection.
    fn with_statement<T>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut Client, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        let mut conn = self.conn.borrow_mut();
        let Conn { client, prepared } = &mut *conn;
        let statement = match prepared.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql)?;
                prepared.insert(sql.to_string(), s.clone());
                s
            }
        };
        f(client, &statement)
    }

    fn rows(
        &self,
        sql: &str,
        params: &[&Param<'_>],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        self.with_statement(sql, |client, s| client.query(s, params))
    }

    /// Runs `sql` and returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[&Param<'_>]) -> Result<u64, postgres::Error> {
        self.with_statement(sql, |client, s| client.execute(s, params))
    }
}

/// A statement parameter.
type Param<'a> = dyn postgres::types::ToSql + Sync + 'a;
