//! `psy show RUN TEST`: one test of a run, its attempts, and the first lines of their output.

use super::attempt_row;
use super::test_lookup::find_attempts;
use psy_model::{AttemptKey, LogStore, LogStream};
use psy_report::excerpt::{head_of, Excerpt};
use psy_report::{format, text};
use psy_store::Store;
use std::io::Write;
use std::process::ExitCode;

/// Lines of each stream shown per attempt; `psy log` prints the rest.
const HEAD_LINES: usize = 10;

pub(crate) fn show_test(
    store: &dyn Store,
    logs: &dyn LogStore,
    run: &str,
    test: &str,
) -> anyhow::Result<ExitCode> {
    let (run_id, attempts) = find_attempts(store, test, Some(run))?;
    let verdict = store
        .test_results(&run_id)?
        .into_iter()
        .find(|r| r.test_id.as_str() == test);
    let mut out = std::io::stdout().lock();
    let id = text::escape(test);
    match &verdict {
        Some(r) => writeln!(
            out,
            "{id}  {} after {} in {} (run {run_id})",
            r.status.as_str(),
            format::count(r.attempts, "attempt"),
            format::duration(r.duration_ms)
        )?,
        // Attempts without a verdict: psy was killed while the test ran.
        None => writeln!(out, "{id}  no verdict (run {run_id} stopped before it)")?,
    }
    writeln!(out, "{}", attempt_row::header())?;
    for a in &attempts {
        writeln!(out, "{}", attempt_row::columns(a))?;
    }
    for a in &attempts {
        // What environment produced the result (`image = "..."`).
        if let Some(image) = &a.image {
            writeln!(
                out,
                "\nattempt {} ran in image {}",
                a.attempt,
                text::escape(image)
            )?;
        }
        if let Some(msg) = &a.message {
            writeln!(out, "\nattempt {}: {}", a.attempt, text::escape(msg))?;
        }
        let key = AttemptKey::of(&run_id, a);
        for stream in LogStream::BOTH {
            let name = stream.as_str();
            writeln!(out)?;
            let path = logs.location(&key, stream);
            let title = format!("--- attempt {} {name} ({})", a.attempt, path.display());
            match head_of(logs.read(&key, stream), HEAD_LINES) {
                Excerpt::Empty => writeln!(out, "{title}: empty")?,
                Excerpt::Unreadable(e) => writeln!(out, "{title}: cannot be read: {e}")?,
                Excerpt::Text { head, omitted, .. } => {
                    writeln!(out, "{title} ---")?;
                    for line in head {
                        writeln!(out, "{}", text::output_line(&line))?;
                    }
                    if let Some(omitted) = omitted {
                        writeln!(
                            out,
                            "    ... {}: psy log {} {run_id} --attempt {} --{name}",
                            omitted.describe(),
                            shell_word(test),
                            a.attempt
                        )?;
                    }
                }
            }
        }
        let driver_stdout = logs.location(&key, LogStream::Stdout);
        let word = shell_word(test);
        super::show_scenario::show(&mut out, &driver_stdout, a.attempt, &word, run_id.as_str())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `test` quoted for a shell when it needs it, so the suggested command can be pasted.
fn shell_word(test: &str) -> String {
    let plain = test
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@_-.:/+=,".contains(c));
    if plain && !test.is_empty() {
        test.to_string()
    } else {
        format!("'{}'", text::escape(&test.replace('\'', r"'\''")))
    }
}
