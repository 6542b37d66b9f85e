//! Which of a claim's candidate jobs an agent gets: a pure, greedy choice (no I/O).
//!
//! The order: higher priority first; between runs of one priority, the run with the fewest
//! leased jobs (counting those picked so far in this claim), so a small run is not stuck
//! behind a big one; within a run, the longest expected job first. Each pick must fit the
//! capacity left; a job that does not fit is passed over for a smaller one (backfilling).

/// A queued job the claim may hand out, with what the order needs about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub job_id: i64,
    pub run_id: i64,
    pub priority: i32,
    /// Jobs of this run leased before the claim.
    pub run_leased: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub expected_ms: i64,
}

/// What the claiming agent has free, and how many jobs it takes at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub max_jobs: usize,
}

/// One run's candidates, longest expected first.
#[derive(Debug)]
struct RunQueue {
    run_id: i64,
    priority: i32,
    leased: i64,
    jobs: Vec<usize>,
}

/// The indices into `candidates` of the jobs to lease, in the order they were picked.
pub fn pick(candidates: &[Candidate], free: Free) -> Vec<usize> {
    let mut runs: Vec<RunQueue> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match runs.iter_mut().find(|r| r.run_id == c.run_id) {
            Some(run) => run.jobs.push(i),
            None => runs.push(RunQueue {
                run_id: c.run_id,
                priority: c.priority,
                leased: c.run_leased,
                jobs: vec![i],
            }),
        }
    }
    for run in &mut runs {
        run.jobs.sort_by_key(|&i| {
            (
                std::cmp::Reverse(candidates[i].expected_ms),
                candidates[i].job_id,
            )
        });
    }
    let (mut cpu, mut memory) = (free.cpu_millis, free.memory_bytes);
    let fits = |i: usize, cpu: i64, memory: i64| {
        candidates[i].cpu_millis <= cpu && candidates[i].memory_bytes <= memory
    };
    let mut picked = Vec::new();
    while picked.len() < free.max_jobs {
        // Each run offers its best job that still fits; the best run's offer is taken.
        let offers = runs.iter().enumerate().filter_map(|(n, run)| {
            let at = run.jobs.iter().position(|&i| fits(i, cpu, memory))?;
            Some((n, at))
        });
        let Some((n, at)) = offers.min_by_key(|&(n, _)| {
            let run = &runs[n];
            (std::cmp::Reverse(run.priority), run.leased, run.run_id)
        }) else {
            break;
        };
        let run = &mut runs[n];
        let i = run.jobs.remove(at);
        run.leased += 1;
        cpu -= candidates[i].cpu_millis;
        memory -= candidates[i].memory_bytes;
        picked.push(i);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::{pick, Candidate, Free};

    fn job(job_id: i64, run_id: i64, priority: i32, cpu: i64, expected_ms: i64) -> Candidate {
        Candidate {
            job_id,
            run_id,
            priority,
            run_leased: 0,
            cpu_millis: cpu,
            memory_bytes: 100,
            expected_ms,
        }
    }

    fn free(cpu: i64, max_jobs: usize) -> Free {
        Free {
            cpu_millis: cpu,
            memory_bytes: 1 << 40,
            max_jobs,
        }
    }

    /// The job ids `pick` chooses from `c` with `cpu` free and at most `max_jobs`.
    fn picked(c: &[Candidate], cpu: i64, max_jobs: usize) -> Vec<i64> {
        let picked = pick(c, free(cpu, max_jobs));
        picked.into_iter().map(|i| c[i].job_id).collect()
    }

    #[test]
    fn longest_expected_first_within_a_run() {
        let c = vec![
            job(1, 1, 0, 1, 10),
            job(2, 1, 0, 1, 30),
            job(3, 1, 0, 1, 20),
        ];
        assert_eq!(picked(&c, 10, 2), vec![2, 3]);
    }

    #[test]
    fn higher_priority_first_then_fair_share() {
        let mut c = vec![
            job(1, 1, 0, 1, 50),
            job(2, 1, 0, 1, 40),
            job(3, 2, 5, 1, 1),
            job(4, 3, 0, 1, 1),
            job(5, 3, 0, 1, 1),
        ];
        // Run 1 already has 3 leased jobs: run 3 (none leased) gets the next two picks.
        for j in &mut c[..2] {
            j.run_leased = 3;
        }
        assert_eq!(picked(&c, 10, 4), vec![3, 4, 5, 1]);
    }

    #[test]
    fn picks_alternate_between_equal_runs() {
        let c = vec![
            job(1, 1, 0, 1, 9),
            job(2, 1, 0, 1, 8),
            job(3, 2, 0, 1, 7),
            job(4, 2, 0, 1, 6),
        ];
        assert_eq!(picked(&c, 10, 4), vec![1, 3, 2, 4]);
    }

    #[test]
    fn packs_what_fits_and_backfills() {
        // 1000 free: the 700 fits, the 600 no longer does, the 300 does.
        let c = vec![
            job(1, 1, 0, 700, 30),
            job(2, 1, 0, 600, 20),
            job(3, 1, 0, 300, 10),
        ];
        assert_eq!(picked(&c, 1000, 10), vec![1, 3]);
        let mut big = c.clone();
        big[0].memory_bytes = 1 << 41;
        assert_eq!(picked(&big, 1000, 10), vec![2, 3]);
        assert!(picked(&c, 100, 10).is_empty());
        assert!(picked(&c, 1000, 0).is_empty());
    }
}
