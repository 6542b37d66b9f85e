//! Reading the last lines of a test's output file without loading the whole file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// At most this many bytes are read from the end of an output file: a test that prints one
/// gigabyte-long line must not make the report slow or huge.
pub(crate) const MAX_TAIL_BYTES: u64 = 64 * 1024;

/// The end of an output file.
#[derive(Debug)]
pub(crate) enum Tail {
    /// The file is empty or absent (psy keeps no file for a stream that wrote nothing).
    Empty,
    /// Its last lines; `cut` when earlier lines (or the start of the first shown line) were left out.
    Lines { lines: Vec<String>, cut: bool },
    /// It could not be read.
    Unreadable(io::Error),
}

/// Reads up to `max_lines` last lines of an opened log (`None`: it wrote nothing).
pub(crate) fn read_tail(opened: io::Result<Option<File>>, max_lines: usize) -> Tail {
    match try_read_tail(opened, max_lines) {
        Ok(tail) => tail,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Tail::Empty,
        Err(e) => Tail::Unreadable(e),
    }
}

fn try_read_tail(opened: io::Result<Option<File>>, max_lines: usize) -> io::Result<Tail> {
    let Some(mut file) = opened? else {
        return Ok(Tail::Empty);
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail::Empty);
    }
    let start = len.saturating_sub(MAX_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.take(MAX_TAIL_BYTES).read_to_end(&mut buf)?;

    let mut cut = start > 0;
    let mut text: &[u8] = &buf;
    // Starting mid-file usually means starting mid-line: drop that fragment if a whole line follows.
    if cut {
        if let Some(nl) = text.iter().position(|&b| b == b'\n') {
            if nl + 1 < text.len() {
                text = &text[nl + 1..];
            }
        }
    }
    if text.last() == Some(&b'\n') {
        text = &text[..text.len() - 1];
    }
    let all: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let skip = all.len().saturating_sub(max_lines);
    cut |= skip > 0;
    let lines = all[skip..]
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Ok(Tail::Lines { lines, cut })
}

/// Makes one line of test output safe to print: keeps what a terminal would show after a
/// carriage return, drops control characters, and drops ANSI escape sequences unless `keep_ansi`.
pub(crate) fn clean_line(line: &str, keep_ansi: bool) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    };
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            let mut seq = String::from(c);
            match chars.peek() {
                // CSI: ESC [ parameters... final byte in @..~
                Some('[') => {
                    seq.push(chars.next().unwrap_or('['));
                    for c in chars.by_ref() {
                        seq.push(c);
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: ESC ] ... terminated by BEL or ESC \
                Some(']') => {
                    while let Some(c) = chars.next() {
                        seq.push(c);
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                Some(_) => seq.extend(chars.next()),
                None => {}
            }
            if keep_ansi {
                out.push_str(&seq);
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn lines_of(tail: Tail) -> (Vec<String>, bool) {
        match tail {
            Tail::Lines { lines, cut } => (lines, cut),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[test]
    fn last_lines_of_a_small_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        fs::write(&p, text).unwrap();
        let (lines, cut) = lines_of(read_tail(crate::logs::open_if_any(&p), 20));
        assert_eq!(lines.len(), 20);
        assert_eq!(lines[0], "line 11");
        assert_eq!(lines[19], "line 30");
        assert!(cut);

        fs::write(&p, "a\nb").unwrap();
        assert_eq!(
            lines_of(read_tail(crate::logs::open_if_any(&p), 20)),
            (vec!["a".into(), "b".into()], false)
        );
    }

    #[test]
    fn huge_files_are_read_from_the_end_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut text = "x".repeat(200_000);
        text.push_str("\nlast\n");
        fs::write(&p, text).unwrap();
        let (lines, cut) = lines_of(read_tail(crate::logs::open_if_any(&p), 20));
        assert_eq!(lines, vec!["last".to_string()]);
        assert!(cut);

        // One endless line: shown, cut to the bytes read.
        fs::write(&p, "y".repeat(200_000)).unwrap();
        let (lines, cut) = lines_of(read_tail(crate::logs::open_if_any(&p), 20));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len() as u64, MAX_TAIL_BYTES);
        assert!(cut);
    }

    #[test]
    fn empty_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        fs::write(&p, "").unwrap();
        assert!(matches!(
            read_tail(crate::logs::open_if_any(&p), 20),
            Tail::Empty
        ));
        assert!(matches!(
            read_tail(crate::logs::open_if_any(&dir.path().join("missing")), 20),
            Tail::Empty
        ));
        match read_tail(crate::logs::open_if_any(dir.path()), 20) {
            Tail::Unreadable(_) => {}
            other => panic!("a directory is not an output file, got {other:?}"),
        }
    }

    #[test]
    fn cleaning_lines() {
        assert_eq!(clean_line("\x1b[31mred\x1b[0m text\r", false), "red text");
        assert_eq!(clean_line("\x1b[31mred\x1b[0m", true), "\x1b[31mred\x1b[0m");
        assert_eq!(clean_line("10%\r50%\r100%", false), "100%");
        assert_eq!(clean_line("a\x07b\tc\x1b]0;title\x07d", false), "ab\tcd");
        assert_eq!(clean_line("\x1b]8;;http://x\x1b\\link", false), "link");
    }
}
