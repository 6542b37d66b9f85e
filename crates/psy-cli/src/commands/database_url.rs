//! The `--database URL` argument (or `PSY_DATABASE_URL`) of the commands that open the fleet's
//! PostgreSQL: `psy server`, its `token` commands, and `psy bench fleet`.

use crate::exit::UsageError;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct DatabaseUrl {
    /// The PostgreSQL database: `postgres://user:password@host:port/db` or `key=value ...`.
    /// Prefer the environment variable, which keeps a password out of the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "PSY_DATABASE_URL",
        hide_env_values = true
    )]
    // Optional for clap and checked by `url()`: clap demanded a required argument flattened
    // into both `psy server` and its subcommands of `psy server` even when a subcommand ran.
    database: Option<String>,
}

impl DatabaseUrl {
    /// The database URL, or the usage error telling `command`'s user how to give one.
    pub(crate) fn url(&self, command: &str) -> Result<&str, UsageError> {
        self.database.as_deref().ok_or_else(|| {
            UsageError(format!(
                "{command} needs a PostgreSQL database: give --database URL or set \
                 PSY_DATABASE_URL (scripts/postgres-test-server starts a throwaway one)"
            ))
        })
    }
}
