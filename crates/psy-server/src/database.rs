//! The connection pool to the server's PostgreSQL database, and how it is named in messages.
//!
//! The pool is `deadpool-postgres`: two small crates over `tokio-postgres` that already handle
//! waiting with a timeout, recycling broken connections and a size limit, which a hand-made
//! pool would have to get right again. Every connection has `search_path` set to the schema, so
//! SQL names tables without a schema and tests can each use a schema of their own.

use crate::ServerError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;

/// The schema Psyduck's tables live in unless told otherwise (the results store's too).
pub const DEFAULT_SCHEMA: &str = "psyduck";

/// How long a request waits for a connection or for one to be opened.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of connections to one schema of one database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    schema: String,
    /// The URL without its password, and the schema: for messages and logs.
    described: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("database", &self.described)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A pool of at most `max_connections` to `url` (`postgres://...` or `key=value ...`), with
    /// every table in `schema`. Connects lazily: a database that is down is reported by the
    /// first query, and the server still starts and answers `/healthz` with 503.
    pub fn new(url: &str, schema: &str, max_connections: usize) -> Result<Self, ServerError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|error| ServerError::InvalidUrl {
                database: "(unparsable URL)".to_string(),
                error,
            })?;
        let described = format!("{} (schema {schema})", describe(&config));
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ServerError::InvalidSchema {
                schema: schema.to_string(),
            });
        }
        config.options(format!("-c search_path={schema}"));
        config.connect_timeout(CONNECT_TIMEOUT);
        // A database host that vanished (no RST: a partition, a crashed machine) errors the
        // connection's queries within about half a minute instead of leaving them waiting.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(5));
        config.keepalives_retries(3);
        config.tcp_user_timeout(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("psy server");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| ServerError::Pool {
                database: described.clone(),
                message: e.to_string(),
            })?;
        Ok(Database {
            pool,
            schema: schema.to_string(),
            described,
        })
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, ServerError> {
        self.pool.get().await.map_err(|e| ServerError::Connect {
            database: self.described.clone(),
            detail: innermost(&e),
        })
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The URL without its password, and the schema.
    pub fn described(&self) -> &str {
        &self.described
    }

    /// An error of `op` on this database.
    pub(crate) fn query_error(&self, op: &str, error: tokio_postgres::Error) -> ServerError {
        ServerError::Query {
            database: self.described.clone(),
            op: op.to_string(),
            error,
        }
    }

    /// Whether the database answers a trivial query now.
    pub async fn is_up(&self) -> bool {
        match self.client().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// The text of the last error in `e`'s chain: the cause, said once.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// `config` as a URL without password: `postgres://user@host:port/dbname`.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let dbname = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{dbname}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::Database;

    #[test]
    fn messages_never_show_the_password() {
        for url in [
            "postgres://psy:s3cret@db.example:5433/fleet",
            "host=db.example port=5433 user=psy password=s3cret dbname=fleet",
            "postgres://psy@db.example:5433/fleet?password=s3cret",
        ] {
            let db = Database::new(url, "psyduck", 2).expect(url);
            assert_eq!(
                db.described(),
                "postgres://psy@db.example:5433/fleet (schema psyduck)",
                "{url}"
            );
        }
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        let err = Database::new("postgres://h/d", "a b", 2).unwrap_err();
        assert!(err.to_string().contains("\"a b\""), "{err}");
    }
}
