//! The default executor: every attempt in its own `psy-sandbox` container.

use super::{AttemptRequest, ExecOutcome, Executor, Running};
use psy_model::CpuPolicy;
use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::{Container, ContainerSpec, Sandbox};
use std::os::fd::RawFd;

/// Runs attempts in sandbox containers.
#[derive(Debug)]
pub struct ContainerExecutor {
    sandbox: Sandbox,
    cpu_policy: CpuPolicy,
}

impl ContainerExecutor {
    pub fn new(sandbox: Sandbox, cpu_policy: CpuPolicy) -> Self {
        ContainerExecutor {
            sandbox,
            cpu_policy,
        }
    }
}

impl ContainerExecutor {
    fn container_spec(&self, req: AttemptRequest<'_>) -> (ContainerSpec, CgroupLimits) {
        let r = &req.test.resources;
        let limits = CgroupLimits {
            cpu_millis: r.cpu_millis,
            exclusive_cores: match self.cpu_policy {
                CpuPolicy::Exclusive => req.cores.clone(),
                CpuPolicy::Shared => None,
            },
            memory_bytes: r.memory_bytes,
            pids: r.pids,
            io: None,
        };
        let spec = ContainerSpec {
            argv: req.test.command.clone(),
            env: req.env,
            cwd: req.test.cwd.clone(),
            hostname: req.test.id.hostname(),
            tmp_bytes: r.tmp_bytes,
            scratch_dir: req.scratch,
            project_dir: req.project_dir,
            stdout: req.stdout,
            stderr: req.stderr,
            cgroup_name: format!("a{:06}", req.key),
        };
        (spec, limits)
    }
}

impl Executor for ContainerExecutor {
    fn start(&mut self, req: AttemptRequest<'_>) -> Result<Box<dyn Running>, String> {
        self.start_many(vec![req])
            .pop()
            .expect("one result per request")
    }

    fn start_many(
        &mut self,
        requests: Vec<AttemptRequest<'_>>,
    ) -> Vec<Result<Box<dyn Running>, String>> {
        let batch = requests
            .into_iter()
            .map(|r| self.container_spec(r))
            .collect();
        self.sandbox
            .spawn_many(batch)
            .into_iter()
            .map(|started| match started {
                Ok(container) => Ok(Box::new(ContainerRun(container)) as Box<dyn Running>),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.sandbox.warnings().to_vec()
    }

    fn close(&mut self) {
        self.sandbox.close();
    }
}

#[derive(Debug)]
struct ContainerRun(Container);

impl Running for ContainerRun {
    fn wait_fd(&self) -> RawFd {
        self.0.pidfd()
    }

    fn kill(&mut self) {
        self.0.kill();
    }

    fn set_cores(&mut self, cores: &[u32]) {
        if let Err(e) = self.0.set_cores(cores) {
            tracing::warn!(
                pid = self.0.pid(),
                "moving a container to cores {cores:?}: {e}"
            );
        }
    }

    fn finish(self: Box<Self>) -> ExecOutcome {
        let outcome = self.0.finish();
        ExecOutcome {
            exit: outcome.exit,
            error: outcome.setup_error.map(|e| e.to_string()),
            wall_time: outcome.wall_time,
            cpu_time: outcome.stats.cpu_time,
            peak_memory_bytes: outcome.stats.peak_memory_bytes,
            oom_killed: outcome.stats.oom_killed,
        }
    }
}
