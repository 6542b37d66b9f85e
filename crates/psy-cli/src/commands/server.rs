//! `psy server`: serve the fleet's HTTP API, and `psy server token create|list|revoke`.
//! Argument parsing and printing only; the server is the psy-server crate.

use super::database_url::DatabaseUrl;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use psy_server::{serve, token_store, Database, Role};
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    command: Option<ServerCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Create, list or revoke the API's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remove the snapshots and blobs (files of submitted trees, attempts' logs) that no run
    /// newer than --older-than needs.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
struct GcArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Keep what runs created or finished within this long (and active runs) name, and
    /// whatever was uploaded within it: `30d`, `12h`, `90m`.
    #[arg(long, value_name = "DURATION", default_value = "30d",
          value_parser = |s: &str| psy_config::parse_duration(s).map_err(|e| e.to_string()))]
    older_than: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it on the last line (it is shown only this once).
    Create(CreateArgs),
    /// List the tokens: id, role, name, created, revoked (never the tokens themselves).
    List(DatabaseArgs),
    /// Revoke every valid token with this name, on every server at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    #[command(flatten)]
    database: DatabaseUrl,
    /// The PostgreSQL schema of Psyduck's tables (the results store's too).
    #[arg(long, value_name = "NAME", default_value = psy_server::DEFAULT_SCHEMA)]
    schema: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The address to listen on, `HOST:PORT` (port 0: any free port; the first line printed
    /// says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    listen: String,
    /// At most this many connections to the database from this server.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_connections: usize,
    /// How long a lease lasts from its claim or an agent's last heartbeat, in seconds; a job
    /// whose lease ran out may be claimed by another agent.
    #[arg(long, value_name = "SECONDS", default_value_t = serve::DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease_seconds: u64,
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// What the token may do.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// A name for the token, shown in logs, `whoami` and `token list`; revoke uses it.
    #[arg(long, value_name = "N", default_value = "unnamed")]
    name: String,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The name of the token(s) to revoke.
    name: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// A `psy agent`: registers itself and (later) runs attempts.
    Agent,
    /// A person or their tools: reads the fleet, (later) submits runs.
    User,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Agent => Role::Agent,
            RoleArg::User => Role::User,
        }
    }
}

pub(crate) fn server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match args.command {
            None => run_server(args.serve).await,
            Some(ServerCommand::Token(TokenCommand::Create(a))) => create(a).await,
            Some(ServerCommand::Token(TokenCommand::List(a))) => list(a).await,
            Some(ServerCommand::Token(TokenCommand::Revoke(a))) => revoke(a).await,
            Some(ServerCommand::Gc(a)) => gc(a).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A pool on the database, migrated.
async fn open(args: &DatabaseArgs, max_connections: usize) -> anyhow::Result<Database> {
    let db = Database::new(
        args.database.url("psy server")?,
        &args.schema,
        max_connections,
    )?;
    serve::prepare(&db).await?;
    Ok(db)
}

async fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    // Not migrated here: a database that is down must not stop the server from starting; it
    // answers 503 and migrates as soon as the database answers.
    let db = Database::new(
        args.database.database.url("psy server")?,
        &args.database.schema,
        args.max_connections,
    )?;
    let listener = serve::bind(&args.listen).await?;
    let addr = serve::local_addr(&listener)?;
    // The first line on stdout, for scripts and tests that asked for port 0.
    let mut out = std::io::stdout().lock();
    writeln!(out, "psy server: listening on http://{addr}")?;
    out.flush()?;
    drop(out);
    let options = serve::Options {
        lease: std::time::Duration::from_secs(args.lease_seconds),
    };
    serve::serve_migrating(db, options, listener, serve::shutdown_signal()).await?;
    Ok(())
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let db = open(&args.database, 1).await?;
    let (info, token) = token_store::create(&db, args.role.into(), &args.name).await?;
    println!(
        "created {} token {:?} (id {}) in {}; it is shown only now:",
        info.role,
        info.name,
        info.id,
        db.described()
    );
    println!("{token}");
    Ok(())
}

async fn list(args: DatabaseArgs) -> anyhow::Result<()> {
    let db = open(&args, 1).await?;
    println!(
        "{:>6}  {:<6}  {:<20}  {:<20}  REVOKED",
        "ID", "ROLE", "CREATED", "NAME"
    );
    for t in token_store::list(&db).await? {
        let name = psy_report::text::escape(&t.name);
        let revoked = t.revoked_at.as_deref().unwrap_or("-");
        println!(
            "{:>6}  {:<6}  {:<20}  {name:<20}  {revoked}",
            t.id, t.role, t.created_at
        );
    }
    Ok(())
}

async fn gc(args: GcArgs) -> anyhow::Result<()> {
    let db = open(&args.database, 1).await?;
    let collected = psy_server::gc::collect(&db, args.older_than).await?;
    println!(
        "removed {} snapshot(s) and {} blob(s) ({}) that no run of the last {} needs, from {}",
        collected.snapshots,
        collected.blobs,
        psy_config::format_size(collected.bytes.max(0) as u64),
        psy_config::format_duration(args.older_than),
        db.described()
    );
    Ok(())
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let db = open(&args.database, 1).await?;
    let revoked = token_store::revoke(&db, &args.name).await?;
    println!("revoked {revoked} token(s) named {:?}", args.name);
    Ok(())
}
