//! The `psy` command: a thin shell over the Psyduck crates; one file per subcommand.

mod cli;
mod commands;
mod exit;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else, while psy is single-threaded and small (see psy_sandbox::zygote).
    // PSY_NO_ZYGOTE=1 clones containers from psy itself (to compare in benchmarks).
    // `psy fault` runs inside a driver's container and starts nothing: no launcher either.
    let fault = std::env::args_os().nth(1).is_some_and(|a| a == "fault");
    let zygote = if fault || std::env::var_os("PSY_NO_ZYGOTE").is_some() {
        Ok(())
    } else {
        psy_sandbox::zygote::start()
    };
    if let Err(e) = zygote {
        eprintln!("warning: no container launcher process ({e}); starting containers directly");
    }
    let cli = cli::Cli::parse();
    // An agent is a service: its log says what it does (info) unless told to be quiet.
    let agent = matches!(cli.command, cli::Command::Agent(_));
    init_logging(if agent && !cli.quiet {
        cli.verbose.max(1)
    } else {
        cli.verbose
    });
    match commands::dispatch(cli) {
        Ok(code) => code,
        // `psy list | head`: the reader left; nothing more to say.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line whatever it quotes: a test id or argument cannot break it or the terminal.
            eprintln!("error: {}", psy_report::text::escape(&format!("{err:#}")));
            exit::code_for(&err)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace;
/// `PSY_LOG=debug` (or `target=level,...`) wins over all of them.
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let targets = std::env::var("PSY_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only on a terminal (no escape codes in CI logs or pipes), and never with NO_COLOR.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .without_time();
    tracing_subscriber::registry()
        .with(targets)
        .with(fmt)
        .init();
}
