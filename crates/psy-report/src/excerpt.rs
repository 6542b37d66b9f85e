//! What of a test's output file is shown: all of it up to a cap, and past the cap its head and
//! its tail around an explicit "... omitted ..." marker (a panic message is at the top, the
//! backtrace and the last words below: a tail alone loses the first, a head the second).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Output shown per stream by default: generous enough for a backtrace with its context.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 256 * 1024;

/// Past this many omitted bytes the marker gives bytes only: counting lines would read them all.
const MAX_COUNTED_BYTES: u64 = 64 << 20;

/// The part of an output file to show.
#[derive(Debug)]
pub enum Excerpt {
    /// The file is empty or absent (psy keeps no file for a stream that wrote nothing).
    Empty,
    /// The file could not be read.
    Unreadable(io::Error),
    /// The lines to show: `head`, then (when something was left out) the `omitted` marker and
    /// `tail`.
    Text {
        head: Vec<String>,
        omitted: Option<Omitted>,
        tail: Vec<String>,
    },
}

/// What was left out between the head and the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Omitted {
    pub bytes: u64,
    /// Whole or partial lines left out; `None` when too many bytes were left out to count them.
    pub lines: Option<u64>,
}

impl Omitted {
    /// `... 1,234 lines (56.7KiB) omitted ...` style text, without the dots.
    pub fn describe(&self) -> String {
        let size = crate::format::bytes(self.bytes);
        match self.lines {
            Some(n) => format!("{} omitted ({size})", crate::format::count(n, "line")),
            None => format!("{size} omitted"),
        }
    }
}

/// All of `path` if it holds at most `max_bytes`, otherwise about `max_bytes / 2` from its
/// start and as much from its end, each cut at a line boundary when there is one.
pub fn read_excerpt(path: &Path, max_bytes: u64) -> Excerpt {
    excerpt_of(crate::logs::open_if_any(path), max_bytes)
}

/// [`read_excerpt`] of an opened log (`None`: it wrote nothing).
pub fn excerpt_of(opened: io::Result<Option<File>>, max_bytes: u64) -> Excerpt {
    catch(opened, |file, len| {
        if len <= max_bytes {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)?;
            return Ok((lines(&buf), None, Vec::new()));
        }
        let half = (max_bytes / 2).max(1);
        let mut head = read_at(file, 0, half)?;
        // End the head at its last newline, keeping at least one (partial) line.
        if let Some(nl) = head.iter().rposition(|&b| b == b'\n') {
            head.truncate(nl + 1);
        }
        // One byte before the tail too: whether the tail starts at a line start.
        let tail_start = len - half - 1;
        let mut tail = read_at(file, tail_start, half + 1)?;
        // Start the tail after its first newline, unless that leaves nothing.
        let tail_cut = match tail.iter().position(|&b| b == b'\n') {
            Some(nl) if nl + 1 < tail.len() => nl + 1,
            _ => 1,
        };
        tail.drain(..tail_cut);
        let gap_start = head.len() as u64;
        let gap_end = tail_start + tail_cut as u64;
        let omitted = Omitted {
            bytes: gap_end - gap_start,
            lines: count_lines(file, gap_start, gap_end)?,
        };
        Ok((lines(&head), Some(omitted), lines(&tail)))
    })
}

/// At most the first `max_lines` lines of `path` (and at most [`DEFAULT_MAX_OUTPUT_BYTES`]),
/// with what follows as the omitted part (its line count only when cheap).
pub fn read_head(path: &Path, max_lines: usize) -> Excerpt {
    head_of(crate::logs::open_if_any(path), max_lines)
}

/// [`read_head`] of an opened log (`None`: it wrote nothing).
pub fn head_of(opened: io::Result<Option<File>>, max_lines: usize) -> Excerpt {
    catch(opened, |file, len| {
        let buf = read_at(file, 0, DEFAULT_MAX_OUTPUT_BYTES.min(len))?;
        let mut end = 0;
        let mut shown = 0;
        for (i, &b) in buf.iter().enumerate() {
            if b == b'\n' {
                shown += 1;
                end = i + 1;
                if shown == max_lines {
                    break;
                }
            }
        }
        if shown < max_lines && buf.len() as u64 == len {
            end = buf.len();
        }
        if end == 0 {
            end = buf.len();
        }
        let rest = len - end as u64;
        let omitted = if rest == 0 {
            None
        } else {
            Some(Omitted {
                bytes: rest,
                lines: count_lines(file, end as u64, len)?,
            })
        };
        Ok((lines(&buf[..end]), omitted, Vec::new()))
    })
}

type Parts = (Vec<String>, Option<Omitted>, Vec<String>);

fn catch(
    opened: io::Result<Option<File>>,
    read: impl FnOnce(&mut File, u64) -> io::Result<Parts>,
) -> Excerpt {
    let attempt = || -> io::Result<Option<Parts>> {
        let Some(mut file) = opened? else {
            return Ok(None);
        };
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(None);
        }
        read(&mut file, len).map(Some)
    };
    match attempt() {
        Ok(None) => Excerpt::Empty,
        Ok(Some((head, omitted, tail))) => Excerpt::Text {
            head,
            omitted,
            tail,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Excerpt::Empty,
        Err(e) => Excerpt::Unreadable(e),
    }
}

fn read_at(file: &mut File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Lines in `[start, end)`, counting a trailing partial line; `None` past [`MAX_COUNTED_BYTES`].
fn count_lines(file: &mut File, start: u64, end: u64) -> io::Result<Option<u64>> {
    if end - start > MAX_COUNTED_BYTES {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut reader = file.take(end - start);
    let mut chunk = vec![0; 64 * 1024];
    let (mut newlines, mut last) = (0u64, b'\n');
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        newlines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk[n - 1];
    }
    Ok(Some(newlines + u64::from(last != b'\n')))
}

/// The lines of `bytes` (a final newline ends the last line; it does not start an empty one).
fn lines(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return vec![String::new()];
    }
    bytes
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn parts(e: Excerpt) -> (Vec<String>, Option<Omitted>, Vec<String>) {
        match e {
            Excerpt::Text {
                head,
                omitted,
                tail,
            } => (head, omitted, tail),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i:04}\n")).collect()
    }

    #[test]
    fn small_files_are_shown_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        fs::write(&p, numbered(30)).unwrap();
        let (head, omitted, tail) = parts(read_excerpt(&p, 1024));
        assert_eq!(head.len(), 30);
        assert_eq!(head[0], "line 0001");
        assert_eq!(omitted, None);
        assert!(tail.is_empty());
        fs::write(&p, "no newline").unwrap();
        assert_eq!(parts(read_excerpt(&p, 1024)).0, ["no newline"]);
    }

    #[test]
    fn large_files_keep_head_and_tail_with_the_gap_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        // 1000 lines of 10 bytes; 200 bytes shown: 10 lines each side.
        fs::write(&p, numbered(1000)).unwrap();
        let (head, omitted, tail) = parts(read_excerpt(&p, 200));
        assert_eq!(head.first().unwrap(), "line 0001");
        assert_eq!(head.last().unwrap(), "line 0010");
        assert_eq!(tail.first().unwrap(), "line 0991");
        assert_eq!(tail.last().unwrap(), "line 1000");
        let omitted = omitted.unwrap();
        assert_eq!(omitted.lines, Some(980));
        assert_eq!(omitted.bytes, 9800);
        assert_eq!(omitted.describe(), "980 lines omitted (9.6KiB)");
    }

    #[test]
    fn one_endless_line_is_cut_in_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        fs::write(&p, "x".repeat(10_000)).unwrap();
        let (head, omitted, tail) = parts(read_excerpt(&p, 100));
        assert_eq!(head, ["x".repeat(50)]);
        assert_eq!(tail, ["x".repeat(50)]);
        assert_eq!(
            omitted,
            Some(Omitted {
                bytes: 9_900,
                lines: Some(1)
            })
        );
    }

    #[test]
    fn heads_stop_after_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        fs::write(&p, numbered(25)).unwrap();
        let (head, omitted, _) = parts(read_head(&p, 10));
        assert_eq!(head.len(), 10);
        assert_eq!(omitted.unwrap().lines, Some(15));
        let (head, omitted, _) = parts(read_head(&p, 30));
        assert_eq!(head.len(), 25);
        assert_eq!(omitted, None);
        fs::write(&p, "a\nb").unwrap();
        assert_eq!(parts(read_head(&p, 10)).0, ["a", "b"]);
    }

    #[test]
    fn empty_missing_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        fs::write(&p, "").unwrap();
        assert!(matches!(read_excerpt(&p, 100), Excerpt::Empty));
        assert!(matches!(
            read_excerpt(&dir.path().join("missing"), 100),
            Excerpt::Empty
        ));
        assert!(matches!(
            read_excerpt(dir.path(), 100),
            Excerpt::Unreadable(_)
        ));
    }
}
