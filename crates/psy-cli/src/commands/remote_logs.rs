//! The output a server reported for its attempts, as a [`LogStore`] the reporters read: kept
//! in a private temporary directory for the life of `psy submit --wait`, so the human report
//! shows a failure's output and JUnit carries it as for `psy run`.

use psy_model::{AttemptKey, LogStore, LogStream, RunId, TestId};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

/// Output by attempt, in files under a temporary directory removed on drop.
#[derive(Debug)]
pub(crate) struct RemoteLogs {
    dir: PathBuf,
    /// The server's run, named in locations.
    run: String,
    files: Mutex<HashMap<(TestId, u32), PathBuf>>,
}

impl RemoteLogs {
    /// A store in a fresh directory of the system's temporary directory.
    pub(crate) fn new(run: i64) -> io::Result<RemoteLogs> {
        let dir = std::env::temp_dir().join(format!("psy-submit-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(RemoteLogs {
            dir,
            run: run.to_string(),
            files: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps `output` as the output of `attempt` of `test`.
    pub(crate) fn put(&self, test: &TestId, attempt: u32, output: &str) -> io::Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        // Numbered, not named after the test: ids may hold any character.
        let path = self.dir.join(format!("{}.out", files.len()));
        std::fs::write(&path, output)?;
        files.insert((test.clone(), attempt), path);
        Ok(())
    }

    fn file(&self, attempt: &AttemptKey) -> Option<PathBuf> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files
            .get(&(attempt.test_id.clone(), attempt.attempt))
            .cloned()
    }
}

impl Drop for RemoteLogs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl LogStore for RemoteLogs {
    fn open_run(&self, _run: &RunId) -> io::Result<()> {
        Ok(())
    }

    fn writer(&self, _attempt: &AttemptKey, _stream: LogStream) -> io::Result<File> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a server run's output is written by its agents",
        ))
    }

    fn finish(&self, _attempt: &AttemptKey, _stream: LogStream) {}

    /// The server keeps one output per attempt, shown as its stdout.
    fn read(&self, attempt: &AttemptKey, stream: LogStream) -> io::Result<Option<File>> {
        match (stream, self.file(attempt)) {
            (LogStream::Stdout, Some(path)) => File::open(path).map(Some),
            _ => Ok(None),
        }
    }

    fn location(&self, attempt: &AttemptKey, _stream: LogStream) -> PathBuf {
        PathBuf::from(format!(
            "psy show {} --server ({} attempt {})",
            self.run, attempt.test_id, attempt.attempt
        ))
    }
}
