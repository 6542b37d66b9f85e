//! `psy bench fleet`: the fleet's work queue under N agents and M no-op tests, through an
//! in-process server and PostgreSQL. Argument parsing and printing only; the benchmark is
//! `psy_server::bench_fleet`.

use crate::commands::database_url::DatabaseUrl;
use anyhow::Context;
use clap::Args;
use psy_server::bench_fleet::{self, FleetBench};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct FleetArgs {
    /// Agents claiming and reporting at once (tasks in this process, one connection each).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    agents: u32,
    /// No-op tests in the one run submitted.
    #[arg(long, value_name = "M", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    tests: u32,
    /// At most this many jobs per claim.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch: u32,
    /// At most this many connections from the server to the database (a few per database
    /// core: more only add contention on a small machine).
    #[arg(long, value_name = "N", default_value_t = 8)]
    max_connections: usize,
    /// Report each result in a request of its own, as agents did before batches.
    #[arg(long)]
    single_reports: bool,
    // The database to measure on: a throwaway schema is made in it and dropped.
    #[command(flatten)]
    database: DatabaseUrl,
}

pub(crate) fn run(args: FleetArgs) -> anyhow::Result<ExitCode> {
    let database_url = args.database.url("psy bench fleet")?.to_string();
    let options = FleetBench {
        database_url,
        agents: args.agents as usize,
        tests: args.tests as usize,
        batch: args.batch,
        single_reports: args.single_reports,
        max_connections: args.max_connections,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(bench_fleet::run(&options))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
