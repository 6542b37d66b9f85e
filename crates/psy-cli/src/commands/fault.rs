//! `psy fault ...`: the driver of a multi-node test asks the runner for a fault. One
//! connection to the unix socket named by `$PSY_FAULT_SOCKET` per call: the request as one
//! JSON line ([`FaultRequest`]), the answer as one JSON line ([`FaultReply`]), sent once the
//! fault is in effect. Exit 0: in effect; 1: refused, failed, or the runner unreachable;
//! 2: bad arguments, or not inside a driver.

use crate::cli::{Cli, FaultCommand, GracefulArgs, NodeArg, VolumeArgs};
use crate::exit;
use anyhow::Context;
use psy_model::scenario::FAULT_SOCKET_ENV;
use psy_model::{FaultReply, FaultRequest, LinkShape};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The runner refused the fault, it failed, or the runner could not be reached.
const NOT_IN_EFFECT: u8 = 1;

pub(crate) fn fault(cmd: FaultCommand) -> anyhow::Result<ExitCode> {
    let request = match request(cmd) {
        Ok(request) => request,
        Err(problem) => partition_usage(&problem).exit(),
    };
    let Some(socket) = std::env::var_os(FAULT_SOCKET_ENV) else {
        eprintln!(
            "psy fault: ${FAULT_SOCKET_ENV} is not set: psy fault works only inside the driver \
             (the command) of a multi-node test, one with [[test.node]]"
        );
        return Ok(ExitCode::from(exit::USAGE));
    };
    match exchange(Path::new(&socket), &request) {
        Ok(reply) if reply.ok => Ok(ExitCode::SUCCESS),
        Ok(reply) => {
            let message = match reply.message.trim() {
                "" => "refused (the runner gave no reason)",
                message => message,
            };
            eprintln!("psy fault: {}", psy_report::text::escape(message));
            Ok(ExitCode::from(NOT_IN_EFFECT))
        }
        Err(e) => {
            eprintln!("psy fault: {}", psy_report::text::escape(&format!("{e:#}")));
            Ok(ExitCode::from(NOT_IN_EFFECT))
        }
    }
}

/// Connects to the socket at `path`. A socket's path must fit `sun_path` (108 bytes); a deep
/// project's is reached through its directory's descriptor instead (`/proc/self/fd/N/name`).
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    const SUN_PATH: usize = 107;
    if path.as_os_str().as_bytes().len() <= SUN_PATH {
        return UnixStream::connect(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path);
    };
    let dir = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(std::os::fd::AsRawFd::as_raw_fd(&dir).to_string())
        .join(name);
    UnixStream::connect(short)
}

/// Sends `request` to the runner at `socket` and waits for its answer.
fn exchange(socket: &Path, request: &FaultRequest) -> anyhow::Result<FaultReply> {
    let at = socket.display();
    let mut stream = connect(socket).with_context(|| {
        format!("cannot reach the runner at {at} (${FAULT_SOCKET_ENV}); has the test ended?")
    })?;
    let mut line = serde_json::to_string(request).context("encoding the request")?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .and_then(|()| stream.flush())
        .with_context(|| format!("sending the request to {at}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .with_context(|| format!("reading the runner's answer from {at}"))?;
    if answer.trim().is_empty() {
        anyhow::bail!("the runner at {at} closed the connection without an answer");
    }
    serde_json::from_str(answer.trim_end()).with_context(|| {
        format!(
            "the runner at {at} answered {:?}, not a fault reply",
            answer.trim_end()
        )
    })
}

/// The request a command line asks for; `Err`: the partition's sides are malformed.
fn request(cmd: FaultCommand) -> Result<FaultRequest, String> {
    use FaultCommand as C;
    Ok(match cmd {
        C::Kill(NodeArg { node }) => FaultRequest::Kill { node },
        C::Stop(GracefulArgs { node, grace }) => FaultRequest::Stop {
            node: node.node,
            grace,
        },
        C::Start(NodeArg { node }) => FaultRequest::Start { node },
        C::Restart(GracefulArgs { node, grace }) => FaultRequest::Restart {
            node: node.node,
            grace,
        },
        C::Pause(NodeArg { node }) => FaultRequest::Pause { node },
        C::Resume(NodeArg { node }) => FaultRequest::Resume { node },
        C::Partition { sides } => {
            let (a, b) = partition_sides(&sides)?;
            FaultRequest::Partition { a, b }
        }
        C::Heal => FaultRequest::Heal,
        C::Link {
            node,
            delay,
            jitter,
            loss,
            rate,
            clear,
        } => FaultRequest::Link {
            node: node.node,
            shape: LinkShape {
                delay,
                jitter,
                loss_percent: loss,
                rate_bps: rate,
            },
            clear,
        },
        C::DiskFull(VolumeArgs { node, path }) => FaultRequest::DiskFull {
            node: node.node,
            path,
        },
        C::DiskFree(VolumeArgs { node, path }) => FaultRequest::DiskFree {
            node: node.node,
            path,
        },
        C::Clock { node, offset } => FaultRequest::Clock {
            node: node.node,
            offset_millis: offset,
        },
    })
}

/// `["n1", "/", "n2,n3"]`, `["n1/n2,n3"]`, `["n1,", "n2", "/n3"]`: two non-empty sides of
/// distinct nodes, split at the one `/`.
fn partition_sides(args: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let joined = args.join(",");
    let Some((a, b)) = joined.split_once('/') else {
        return Err(format!(
            "no `/` between the two sides in {:?} (write: partition n1 / n2,n3)",
            args.join(" ")
        ));
    };
    if b.contains('/') {
        return Err(format!(
            "more than one `/` in {:?}: a partition has two sides",
            args.join(" ")
        ));
    }
    let side = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    };
    let (a, b) = (side(a), side(b));
    if a.is_empty() || b.is_empty() {
        return Err(format!(
            "a side of {:?} names no node (write: partition n1 / n2,n3)",
            args.join(" ")
        ));
    }
    let mut all: Vec<&String> = a.iter().chain(&b).collect();
    all.sort();
    if let Some(twice) = all.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "node {:?} is named twice in {:?}",
            twice[0],
            args.join(" ")
        ));
    }
    Ok((a, b))
}

/// clap's own usage error for `psy fault partition` (exit 2, with its usage line).
fn partition_usage(problem: &str) -> clap::Error {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let partition = cli
        .find_subcommand_mut("fault")
        .and_then(|f| f.find_subcommand_mut("partition"));
    match partition {
        Some(cmd) => cmd.error(clap::error::ErrorKind::ValueValidation, problem),
        None => clap::Error::raw(clap::error::ErrorKind::ValueValidation, problem),
    }
}

/// `--grace`, `--delay`, `--jitter`: `10s`, `100ms`, `1m30s`.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    psy_config::parse_duration(s).map_err(|e| e.to_string())
}

/// `--offset`: a duration with an optional sign, in milliseconds.
pub(crate) fn offset_millis(s: &str) -> Result<i64, String> {
    let (sign, magnitude) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let millis = duration(magnitude)?.as_millis();
    i64::try_from(millis)
        .map(|m| sign * m)
        .map_err(|_| format!("offset {s:?} is too large"))
}

/// `--loss`: `5%` or `5`, a percentage from 0 to 100.
pub(crate) fn loss(s: &str) -> Result<f64, String> {
    let number = s.trim().strip_suffix('%').unwrap_or(s.trim());
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid loss {s:?} (expected a percentage from 0 to 100 such as 5%)"
        )),
    }
}

/// `--rate`: bits per second as `tc` writes them, `1mbit`, `100kbit`, `1gbit`.
pub(crate) fn rate(s: &str) -> Result<u64, String> {
    match psy_config::parse_rate(s) {
        Ok(0) => Err(format!("rate {s:?} must be greater than zero")),
        Ok(bits) => Ok(bits),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The request `psy fault ARGS` sends, or clap's / the partition's error.
    fn parse(args: &[&str]) -> Result<FaultRequest, String> {
        let argv = ["psy", "fault"].iter().chain(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            crate::cli::Command::Fault(cmd) => request(cmd),
            other => panic!("not a fault command: {other:?}"),
        }
    }

    fn node(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn node_commands() {
        assert_eq!(
            parse(&["kill", "n1"]),
            Ok(FaultRequest::Kill { node: node("n1") })
        );
        assert_eq!(
            parse(&["stop", "n2"]),
            Ok(FaultRequest::Stop {
                node: node("n2"),
                grace: None
            })
        );
        assert_eq!(
            parse(&["restart", "n2", "--grace", "1.5s"]),
            Ok(FaultRequest::Restart {
                node: node("n2"),
                grace: Some(Duration::from_millis(1500))
            })
        );
        assert_eq!(
            parse(&["start", "n2"]),
            Ok(FaultRequest::Start { node: node("n2") })
        );
        assert_eq!(
            parse(&["pause", "db"]),
            Ok(FaultRequest::Pause { node: node("db") })
        );
        assert_eq!(
            parse(&["resume", "db"]),
            Ok(FaultRequest::Resume { node: node("db") })
        );
        assert_eq!(parse(&["heal"]), Ok(FaultRequest::Heal));
        assert_eq!(
            parse(&["disk-full", "n1"]),
            Ok(FaultRequest::DiskFull {
                node: node("n1"),
                path: None
            })
        );
        assert_eq!(
            parse(&["disk-free", "n1", "/data"]),
            Ok(FaultRequest::DiskFree {
                node: node("n1"),
                path: Some("/data".into())
            })
        );
        for bad in [
            &["kill"][..],
            &["kill", "a", "b"],
            &["stop", "n1", "--grace", "soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn partitions_split_at_the_slash_wherever_it_is() {
        let expected = Ok(FaultRequest::Partition {
            a: vec![node("n1"), node("n2")],
            b: vec![node("n3")],
        });
        for args in [
            &["partition", "n1,n2", "/", "n3"][..],
            &["partition", "n1,n2/n3"],
            &["partition", "n1,n2/", "n3"],
            &["partition", "n1", "n2", "/n3"],
            &["partition", "n1,", "n2", "/", "n3"],
        ] {
            assert_eq!(parse(args), expected, "{args:?}");
        }
        for (args, problem) in [
            (&["partition", "n1", "n2"][..], "no `/`"),
            (
                &["partition", "n1", "/", "n2", "/", "n3"],
                "more than one `/`",
            ),
            (&["partition", "/", "n2"], "names no node"),
            (&["partition", "n1,n2", "/"], "names no node"),
            (
                &["partition", "n1", "/", "n1"],
                "node \"n1\" is named twice",
            ),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(problem), "{args:?}: {err}");
        }
        assert!(parse(&["partition"]).is_err(), "sides are required");
    }

    #[test]
    fn links_take_tc_style_values() {
        assert_eq!(
            parse(&[
                "link", "n3", "--delay", "100ms", "--jitter", "10ms", "--loss", "5%", "--rate",
                "1mbit"
            ]),
            Ok(FaultRequest::Link {
                node: node("n3"),
                shape: LinkShape {
                    delay: Some(Duration::from_millis(100)),
                    jitter: Some(Duration::from_millis(10)),
                    loss_percent: Some(5.0),
                    rate_bps: Some(1_000_000),
                },
                clear: false,
            })
        );
        assert_eq!(
            parse(&["link", "n3", "--loss", "0.5", "--rate", "100kbit"]),
            Ok(FaultRequest::Link {
                node: node("n3"),
                shape: LinkShape {
                    loss_percent: Some(0.5),
                    rate_bps: Some(100_000),
                    ..LinkShape::default()
                },
                clear: false,
            })
        );
        assert_eq!(
            parse(&["link", "n3", "--clear"]),
            Ok(FaultRequest::Link {
                node: node("n3"),
                shape: LinkShape::default(),
                clear: true,
            })
        );
        for bad in [
            &["link", "n3"][..],
            &["link", "n3", "--clear", "--delay", "1ms"],
            &["link", "n3", "--jitter", "10ms"],
            &["link", "n3", "--loss", "101%"],
            &["link", "n3", "--loss", "-1"],
            &["link", "n3", "--rate", "1000"],
            &["link", "n3", "--rate", "0mbit"],
            &["link", "n3", "--delay", "soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clock_offsets_may_be_negative() {
        let clock = |offset_millis| {
            Ok(FaultRequest::Clock {
                node: node("n1"),
                offset_millis,
            })
        };
        assert_eq!(parse(&["clock", "n1", "--offset", "30s"]), clock(30_000));
        assert_eq!(parse(&["clock", "n1", "--offset=-30s"]), clock(-30_000));
        assert_eq!(parse(&["clock", "n1", "--offset", "-1m"]), clock(-60_000));
        assert_eq!(parse(&["clock", "n1", "--offset", "+250ms"]), clock(250));
        assert!(parse(&["clock", "n1"]).is_err(), "--offset is required");
        assert!(parse(&["clock", "n1", "--offset", "--5s"]).is_err());
    }
}
