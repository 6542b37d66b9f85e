//! Replays a JSON-lines event stream (as written by `JsonReporter`) through the human reporter
//! on stderr, to see the progress bar and summary: `replay EVENTS.jsonl [DELAY_MS]`.

use psy_report::{HumanOptions, HumanReporter, Reporter, RunEvent, Verbosity};
use std::io::BufRead;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: replay EVENTS.jsonl [DELAY_MS]")?;
    let delay = Duration::from_millis(args.next().map_or(Ok(300), |d| d.parse())?);
    let verbosity = if std::env::var_os("VERBOSE").is_some() {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mut reporter = HumanReporter::stderr(HumanOptions {
        verbosity,
        ..HumanOptions::default()
    });
    for line in std::io::BufReader::new(std::fs::File::open(&path)?).lines() {
        let event: RunEvent = serde_json::from_str(&line?)?;
        reporter.on_event(&event)?;
        std::thread::sleep(delay);
    }
    reporter.finish()?;
    Ok(())
}
