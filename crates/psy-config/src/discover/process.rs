//! Running a discovery command on the host and turning its failure into a one-line error.

use crate::error::ConfigError;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a discovery command printed.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
}

/// Runs `argv` in `dir`, failing unless it exits 0 or with one of `ok_codes`.
pub(crate) fn run(
    argv: &[String],
    dir: &Path,
    origin: &str,
    ok_codes: &[i32],
) -> Result<Listed, ConfigError> {
    let shown = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .expect("argv lists are checked non-empty at load");
    // A relative program with a slash ("./list.sh") means the manifest's directory, whatever
    // the platform's rule for relative programs combined with current_dir.
    let program = if program.contains('/') {
        dir.join(program)
    } else {
        program.into()
    };
    tracing::debug!(command = %shown, dir = %dir.display(), "running discovery command");
    let output = Command::new(&program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ConfigError::DiscoverSpawn {
            origin: origin.to_string(),
            command: shown.clone(),
            source,
        })?;
    let code = output.status.code();
    if !output.status.success() && !code.is_some_and(|c| ok_codes.contains(&c)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail = if stderr.trim().is_empty() {
            tail(&stdout)
        } else {
            tail(&stderr)
        };
        return Err(ConfigError::DiscoverFailed {
            origin: origin.to_string(),
            command: shown,
            status: output.status.to_string(),
            output_tail: tail,
        });
    }
    Ok(Listed {
        code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// The last few non-blank lines on one line, cut to a readable length.
fn tail(output: &str) -> String {
    const LINES: usize = 5;
    const MAX_CHARS: usize = 400;
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "(no output)".to_string();
    }
    let joined = lines[lines.len().saturating_sub(LINES)..].join(" | ");
    let count = joined.chars().count();
    if count <= MAX_CHARS {
        return joined;
    }
    let cut: String = joined.chars().skip(count - MAX_CHARS).collect();
    format!("...{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines_on_one_line() {
        assert_eq!(tail("a\n\nb\nc\nd\ne\nf\n"), "b | c | d | e | f");
        assert_eq!(tail("  \n"), "(no output)");
        assert!(tail(&"x".repeat(1000)).starts_with("..."));
    }
}
