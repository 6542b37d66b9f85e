//! One module per subcommand; [`dispatch`] picks one.

pub(crate) mod agent;
mod attempt_row;
pub(crate) mod bench;
mod context;
mod durations;
mod gc;
mod history;
pub(crate) mod image;
mod list;
mod log;
mod run;
mod run_control;
mod run_report;
#[cfg(feature = "server")]
pub(crate) mod server;
mod show;
mod show_test;
mod test_lookup;

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
        Command::Show(args) => show::show(args),
        Command::History(args) => history::history(args),
        Command::Log(args) => log::log(args),
        Command::Gc(args) => gc::gc(args),
        Command::Bench(cmd) => bench::bench(cmd),
        Command::Calibrate(args) => psy_bench::calibrate::run(args),
        Command::Export(args) => durations::export(args),
        Command::Import(args) => durations::import(args),
        Command::Image(cmd) => image::image(cmd),
        Command::Agent(args) => agent::agent(args),
        #[cfg(feature = "server")]
        Command::Server(args) => server::server(args),
    }
}
