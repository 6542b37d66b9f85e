//! Counting the database's work: statements from `pg_stat_statements` when the extension is
//! installed in the database, else transactions from `pg_stat_database.xact_commit` (each
//! single-statement request is one; a claim's transaction of several statements is one too).
//! Both count the whole database, so other clients of it during the run are counted as well.
//!
//! PostgreSQL publishes a backend's counts when it exits or every second or so while busy:
//! the benchmark closes its connections before reading.

use tokio_postgres::NoTls;

/// What was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `sum(calls)` of `pg_stat_statements`.
    Statements,
    /// `xact_commit + xact_rollback` of `pg_stat_database`.
    Transactions,
}

impl Counted {
    /// How the figure is described in the report.
    pub fn describe(self) -> &'static str {
        match self {
            Counted::Statements => "statements (pg_stat_statements, whole database)",
            Counted::Transactions => "transactions (pg_stat_database xact_commit, whole database)",
        }
    }
}

const STATEMENTS: &str = "SELECT sum(calls)::bigint FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())";
const TRANSACTIONS: &str = "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database
    WHERE datname = current_database()";

/// The count now, of `what` (or, when `None`, of statements if possible, else transactions).
pub(crate) async fn read(url: &str, what: Option<Counted>) -> Result<(Counted, i64), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("connecting to read statistics: {e}"))?;
    let connection = tokio::spawn(connection);
    let mut answer = Err(String::new());
    if what != Some(Counted::Transactions) {
        answer = client
            .query_one(STATEMENTS, &[])
            .await
            .map(|row| {
                (
                    Counted::Statements,
                    row.get::<_, Option<i64>>(0).unwrap_or(0),
                )
            })
            .map_err(|e| format!("reading pg_stat_statements: {e}"));
    }
    if answer.is_err() && what != Some(Counted::Statements) {
        answer = client
            .query_one(TRANSACTIONS, &[])
            .await
            .map(|row| (Counted::Transactions, row.get(0)))
            .map_err(|e| format!("reading pg_stat_database: {e}"));
    }
    drop(client);
    let _ = connection.await;
    answer
}
