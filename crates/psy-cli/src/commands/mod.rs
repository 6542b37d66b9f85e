//! One module per subcommand; [`dispatch`] picks one.

mod attempt_row;
pub(crate) mod bench;
pub(crate) mod calibrate;
mod clock;
mod context;
mod durations;
mod gc;
mod guarantees;
mod history;
mod list;
mod run;
mod run_control;
mod show;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::List(args) => list::list(args),
        Command::Show(args) => show::show(args),
        Command::History(args) => history::history(args),
        Command::Gc(args) => gc::gc(args),
        Command::Bench(cmd) => bench::bench(cmd),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Export(args) => durations::export(args),
        Command::Import(args) => durations::import(args),
    }
}
