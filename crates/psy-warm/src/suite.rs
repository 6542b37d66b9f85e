//! A whole collected suite through one warm worker, `parallel` children at a time: the driver of
//! the crate's tests and of [`crate::measure`].

use crate::child::{ChildExit, Ended, WarmChild};
use crate::error::WarmError;
use crate::outcome::{verdict, WarmVerdict};
use crate::parent::WarmParent;
use crate::protocol::{Entry, RunRequest};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One test of a suite run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub nodeid: String,
    pub exit: ChildExit,
    pub verdict: WarmVerdict,
    /// Its stdout and stderr logs.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// From the run request to its exit being seen: fork, the test, the result.
    pub elapsed: Duration,
}

/// The request for test `index` of a suite, its files in `dir`.
pub fn request(nodeid: &str, index: usize, dir: &Path) -> RunRequest {
    let file = |ext: &str| dir.join(format!("{index}.{ext}"));
    RunRequest {
        run: nodeid.to_string(),
        test_id: nodeid.to_string(),
        attempt: 1,
        env: BTreeMap::new(),
        stdout: file("out"),
        stderr: file("err"),
        result: file("json"),
        entry: Entry::None,
    }
}

/// Runs each of `ids`, `parallel` at a time (at least one), writing their files into `dir`;
/// results in the order of `ids`.
pub fn run_each(
    parent: &mut WarmParent,
    ids: &[String],
    parallel: usize,
    dir: &Path,
) -> Result<Vec<Finished>, WarmError> {
    let mut running: Vec<WarmChild> = Vec::new();
    let mut started: HashMap<u32, (usize, Instant, RunRequest)> = HashMap::new();
    let mut done: Vec<Option<Finished>> = vec![None; ids.len()];
    let mut next = 0;
    while next < ids.len() || !running.is_empty() {
        while next < ids.len() && running.len() < parallel.max(1) {
            let request = request(&ids[next], next, dir);
            let start = Instant::now();
            let child = parent.run(&request)?;
            started.insert(child.pid(), (next, start, request));
            running.push(child);
            next += 1;
        }
        let Ended { pid, exit, .. } = parent.wait_any(&mut running)?;
        if let Some((index, start, request)) = started.remove(&pid) {
            done[index] = Some(Finished {
                nodeid: request.run,
                exit,
                verdict: verdict(exit, &request.result),
                stdout: request.stdout,
                stderr: request.stderr,
                elapsed: start.elapsed(),
            });
        }
    }
    Ok(done.into_iter().flatten().collect())
}
