//! One module per subcommand; [`dispatch`] picks one.

pub(crate) mod agent;
mod attempt_row;
pub(crate) mod bench;
mod client;
mod context;
#[cfg(feature = "server")]
mod database_url;
mod durations;
pub(crate) mod fault;
mod gc;
mod history;
pub(crate) mod image;
mod list;
mod log;
mod remote_log;
mod remote_logs;
mod run;
mod run_control;
mod run_report;
mod runs;
#[cfg(feature = "server")]
pub(crate) mod server;
mod show;
mod show_remote;
mod show_scenario;
mod show_test;
mod submit;
mod test_lookup;
mod wait;

use crate::cli::{Cli, Command};
use psy_report::Verbosity;
use std::process::ExitCode;

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    match cli.command {
        Command::Run(args) => run::run(args, verbosity),
        Command::List(args) => list::list(args, verbosity),
        Command::Show(args) if args.remote.server.is_some() => show_remote::show(args),
        Command::Show(args) => show::show(args),
        Command::Submit(args) => submit::submit(args, verbosity),
        Command::Runs(args) => runs::list(args),
        Command::Cancel(args) => runs::cancel(args),
        Command::History(args) => history::history(args),
        Command::Log(args) if args.remote.server.is_some() => remote_log::log(args),
        Command::Log(args) => log::log(args),
        Command::Gc(args) => gc::gc(args),
        Command::Bench(cmd) => bench::bench(cmd),
        Command::Calibrate(args) => psy_bench::calibrate::run(args),
        Command::Export(args) => durations::export(args),
        Command::Import(args) => durations::import(args),
        Command::Image(cmd) => image::image(cmd),
        Command::Agent(args) => agent::agent(args),
        Command::Fault(cmd) => fault::fault(cmd),
        #[cfg(feature = "server")]
        Command::Server(args) => server::server(args),
    }
}
