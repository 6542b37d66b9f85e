//! The errors of the server's operations, each naming the database (password hidden), the
//! address or the token name it concerns; never a token itself.
//!
//! PostgreSQL client errors are kept as `error` (not `source`) and shown in the message: their
//! own Display already includes their cause, so a `{:#}` chain would repeat it.

use std::net::SocketAddr;

/// What went wrong connecting, migrating, serving or managing tokens.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid database URL {database}: {error}")]
    InvalidUrl {
        database: String,
        error: tokio_postgres::Error,
    },
    /// The schema name is not a plain identifier.
    #[error("invalid schema name {schema:?}: use lowercase letters, digits and underscores")]
    InvalidSchema { schema: String },
    /// The connection pool could not be built.
    #[error("cannot set up a connection pool for {database}: {message}")]
    Pool { database: String, message: String },
    /// No connection could be had from the pool.
    #[error("cannot connect to {database}: {detail}")]
    Connect {
        database: String,
        /// The innermost cause (the pool's errors repeat theirs in their own text).
        detail: String,
    },
    /// A statement failed.
    #[error("{op} in {database}: {error}")]
    Query {
        database: String,
        op: String,
        error: tokio_postgres::Error,
    },
    /// The database was migrated by a newer psy server.
    #[error("{database} has server schema version {found}, newer than this psy supports ({supported}); upgrade psy")]
    SchemaTooNew {
        database: String,
        found: u32,
        supported: u32,
    },
    /// Migration step `from` -> `to` failed.
    #[error("migrating {database} from server schema version {from} to {to}: {error}")]
    Migrate {
        database: String,
        from: u32,
        to: u32,
        error: tokio_postgres::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Serving stopped on an I/O error.
    #[error("serving on {addr}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The operating system gave no random bytes for a token.
    #[error("cannot generate a token: no randomness from the operating system: {0}")]
    Random(String),
    /// A token name or id named in `psy server token revoke` matches no token.
    #[error("no token named {name:?} in {database}")]
    NoSuchToken { database: String, name: String },
}

impl ServerError {
    /// Whether trying again later may succeed: the database could not be reached, was
    /// restarting or shutting down, refused more connections, or aborted a transaction for a
    /// conflict. Everything else (a bad URL, a schema too new, a statement PostgreSQL
    /// rejected) is final.
    pub fn is_transient(&self) -> bool {
        let error = match self {
            ServerError::Connect { .. } => return true,
            ServerError::Query { error, .. } | ServerError::Migrate { error, .. } => error,
            _ => return false,
        };
        match error.code() {
            // No SQLSTATE: the connection broke, or a timeout.
            None => true,
            Some(code) => {
                let code = code.code();
                code.starts_with("08") // connection exception
                    || code.starts_with("57P") // shutting down, starting up
                    || matches!(code, "53300" | "40001" | "40P01")
            }
        }
    }
}
