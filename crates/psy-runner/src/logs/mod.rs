//! The local [`LogStore`]: each attempt's streams as files in `.psyduck/logs/<run>/`, named
//! `<test stem>.<attempt>.out` / `.err` (the layout `psy log` and `psy show` have always read),
//! made from a pool of spare files so that streams that print nothing cost no inode.

mod spares;

use crate::layout::StateDir;
use psy_model::{AttemptKey, LogStore, LogStream, RunId};
use spares::LogSpares;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One project's logs. Reading needs nothing more; writing needs [`Self::open_run`] first.
#[derive(Debug)]
pub struct LocalLogs {
    state: StateDir,
    writing: Mutex<Writing>,
}

/// The spare pool of the run being written, and the spare behind each open stream.
#[derive(Debug, Default)]
struct Writing {
    spares: Option<LogSpares>,
    open: HashMap<(AttemptKey, LogStream), PathBuf>,
}

impl LocalLogs {
    pub fn new(state: StateDir) -> Self {
        LocalLogs {
            state,
            writing: Mutex::new(Writing::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writing> {
        // A panic while holding it leaves the maps consistent: every update is one call.
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogStore for LocalLogs {
    /// The run's directory and the spare pool (its errors name the directory).
    fn open_run(&self, run: &RunId) -> io::Result<()> {
        let dir = self.state.run_logs(run);
        std::fs::create_dir_all(&dir).map_err(|e| in_dir(e, "creating", &dir))?;
        let spares_dir = self.state.log_spares();
        let spares = LogSpares::open(spares_dir.clone(), run.to_string())
            .map_err(|e| in_dir(e, "preparing log files in", &spares_dir))?;
        self.lock().spares = Some(spares);
        Ok(())
    }

    fn writer(&self, attempt: &AttemptKey, stream: LogStream) -> io::Result<File> {
        let path = self.location(attempt, stream);
        let mut writing = self.lock();
        let spares = writing.spares.as_mut().ok_or_else(|| {
            io::Error::other(format!(
                "no run is writing logs in {}",
                self.state.root().display()
            ))
        })?;
        let (file, spare) = spares.create(&path)?;
        writing.open.insert((attempt.clone(), stream), spare);
        Ok(file)
    }

    fn finish(&self, attempt: &AttemptKey, stream: LogStream) {
        let mut writing = self.lock();
        let Some(spare) = writing.open.remove(&(attempt.clone(), stream)) else {
            return;
        };
        if let Some(spares) = writing.spares.as_mut() {
            spares.settle(&self.location(attempt, stream), spare);
        }
    }

    fn read(&self, attempt: &AttemptKey, stream: LogStream) -> io::Result<Option<File>> {
        open_if_any(&self.location(attempt, stream))
    }

    fn location(&self, attempt: &AttemptKey, stream: LogStream) -> PathBuf {
        let (stdout, stderr) =
            self.state
                .attempt_logs(&attempt.run_id, &attempt.test_id, attempt.attempt);
        match stream {
            LogStream::Stdout => stdout,
            LogStream::Stderr => stderr,
        }
    }
}

/// `err`, saying what was done where.
fn in_dir(err: io::Error, what: &str, dir: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", dir.display()))
}

/// The file at `path`; `None` when there is none (a stream that wrote nothing).
fn open_if_any(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psy_model::TestId;
    use std::io::{Read, Write};

    fn key(attempt: u32) -> AttemptKey {
        AttemptKey {
            run_id: RunId("r1".into()),
            test_id: TestId("unit::a b".into()),
            attempt,
        }
    }

    #[test]
    fn blobs_are_the_files_psy_log_reads() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let logs = LocalLogs::new(state.clone());
        let (stdout, stderr) = state.attempt_logs(&key(2).run_id, &key(2).test_id, 2);
        assert_eq!(logs.location(&key(2), LogStream::Stdout), stdout);
        assert_eq!(logs.location(&key(2), LogStream::Stderr), stderr);
        assert!(
            logs.writer(&key(1), LogStream::Stdout).is_err(),
            "no run open"
        );

        logs.open_run(&key(1).run_id).unwrap();
        let mut out = logs.writer(&key(2), LogStream::Stdout).unwrap();
        let _err = logs.writer(&key(2), LogStream::Stderr).unwrap();
        out.write_all(b"hello\n").unwrap();
        drop(out);
        for stream in LogStream::BOTH {
            logs.finish(&key(2), stream);
        }
        let mut text = String::new();
        let mut file = logs.read(&key(2), LogStream::Stdout).unwrap().unwrap();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\n");
        assert_eq!(std::fs::read_to_string(stdout).unwrap(), "hello\n");
        assert!(
            logs.read(&key(2), LogStream::Stderr).unwrap().is_none(),
            "empty: no blob"
        );
        assert!(logs.read(&key(9), LogStream::Stdout).unwrap().is_none());
    }
}
