//! `psy bench fleet`: the work queue's throughput. An in-process server on a throwaway schema,
//! one run of M no-op jobs, N agents (tasks, each with one kept-alive HTTP connection) that
//! claim a batch, report its attempts passed at once (in one request, as an agent reports
//! results that end together; or one request each), and claim again until the run is done.
//! Measures completed attempts per second, the latency of claims and of reports, and how
//! much database work each attempt took (see [`pg_stats`]).
//!
//! Everything goes through the HTTP API and PostgreSQL as a real fleet's agents would; only
//! the executor is missing. The schema is dropped at the end, pass or fail.

mod agent;
mod client;
pub mod pg_stats;

use crate::{serve, token_store, Database, Role, ServerError};
use client::Connection;
use pg_stats::Counted;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct FleetBench {
    /// The PostgreSQL database (a throwaway schema is made in it and dropped after).
    pub database_url: String,
    pub agents: usize,
    pub tests: usize,
    /// Jobs per claim at most.
    pub batch: u32,
    /// Each result in a request of its own (`POST /api/leases/{id}/result`) rather than a
    /// claim's results in one (`POST /api/leases/results`).
    pub single_reports: bool,
    /// The server's pool size.
    pub max_connections: usize,
}

/// Why the benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum FleetBenchError {
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A request could not be sent or its answer read.
    #[error("{0}")]
    Http(String),
    /// The server refused a request or answered something unexpected.
    #[error("{request} answered {status}: {body}")]
    Refused {
        request: String,
        status: u16,
        body: String,
    },
    /// The figures could not be read from PostgreSQL.
    #[error("{0}")]
    Statistics(String),
    /// A benchmark agent task died.
    #[error("a benchmark agent stopped: {0}")]
    Agent(String),
}

/// A median and a 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub count: usize,
    pub median: Duration,
    pub p99: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1));
            samples.get(i - 1).copied().unwrap_or_default()
        };
        Latency {
            count: samples.len(),
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

/// The figures of one benchmark.
#[derive(Debug, Clone)]
pub struct FleetReport {
    pub options: FleetBench,
    /// The database, without password.
    pub database: String,
    /// Attempts reported (and recorded) during the measured phase.
    pub completed: u64,
    /// From the first claim to the last report.
    pub wall: Duration,
    pub claims: Latency,
    pub empty_claims: u64,
    pub reports: Latency,
    /// Database work during the measured phase, and what was counted.
    pub database_work: (Counted, i64),
    /// Whether the run ended `done` with one result per job.
    pub run_state: String,
    pub results: i64,
    pub jobs_with_results: i64,
}

impl FleetReport {
    /// Completed attempts per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for FleetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.options;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let per = |n: f64| n / (self.completed.max(1) as f64);
        writeln!(
            f,
            "psy bench fleet: {} agents, {} no-op tests, batches of up to {}, {}, one in-process \
             server ({} connections) on {}",
            o.agents,
            o.tests,
            o.batch,
            if o.single_reports {
                "a request per result"
            } else {
                "a claim's results in one request"
            },
            o.max_connections,
            self.database
        )?;
        writeln!(
            f,
            "  completed      {} attempts in {:.2} s: {:.0} attempts/s",
            self.completed,
            self.wall.as_secs_f64(),
            self.rate()
        )?;
        writeln!(
            f,
            "  claim          median {:.2} ms, p99 {:.2} ms ({} claims, {} empty)",
            ms(self.claims.median),
            ms(self.claims.p99),
            self.claims.count,
            self.empty_claims
        )?;
        writeln!(
            f,
            "  report         median {:.2} ms, p99 {:.2} ms ({} report requests)",
            ms(self.reports.median),
            ms(self.reports.p99),
            self.reports.count
        )?;
        let (counted, work) = self.database_work;
        writeln!(
            f,
            "  per attempt    {:.3} claims + {:.3} reports = {:.3} requests; {:.2} {}",
            per(self.claims.count as f64),
            per(self.reports.count as f64),
            per((self.claims.count + self.reports.count) as f64),
            per(work as f64),
            counted.describe()
        )?;
        write!(
            f,
            "  check          run {}; {} results for {} of {} jobs",
            self.run_state, self.results, self.jobs_with_results, o.tests
        )
    }
}

/// A server on 127.0.0.1 serving `db` until told to stop.
struct Running {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

async fn start(db: Database) -> Result<Running, ServerError> {
    let listener = serve::bind("127.0.0.1:0").await?;
    let addr = serve::local_addr(&listener)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve::serve(
        db,
        serve::Options::default(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Running { addr, stop, task })
}

impl Running {
    /// Stops the server; its pool (and so its database sessions) closes with it.
    async fn stop(self) -> Result<(), FleetBenchError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| FleetBenchError::Agent(format!("the server task: {e}")))??;
        // Sessions publish their statistics as they exit, just after their connections close.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }
}

/// A schema name no one else uses.
fn throwaway_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("psy_bench_fleet_{}_{nanos}", std::process::id())
}

/// Runs the benchmark on a throwaway schema of `options.database_url`, dropped after.
pub async fn run(options: &FleetBench) -> Result<FleetReport, FleetBenchError> {
    let schema = throwaway_schema();
    let db = Database::new(&options.database_url, &schema, options.max_connections)?;
    tracing::info!(database = %db.described(), "benchmark schema");
    let result = measure(&db, options).await;
    let dropped = async {
        let client = db.client().await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .map_err(|e| db.query_error("dropping the benchmark schema", e))
    };
    if let Err(e) = dropped.await {
        tracing::warn!(error = %e, "the benchmark schema is left behind");
    }
    result
}

async fn measure(db: &Database, options: &FleetBench) -> Result<FleetReport, FleetBenchError> {
    let url = &options.database_url;
    let stats = |what| async move {
        pg_stats::read(url, what)
            .await
            .map_err(FleetBenchError::Statistics)
    };
    serve::prepare(db).await?;
    let (_, user) = token_store::create(db, Role::User, "bench-user").await?;
    let (_, agent) = token_store::create(db, Role::Agent, "bench-agent").await?;

    // Set-up on a server of its own, closed before counting starts.
    let setup_db = Database::new(url, db.schema(), options.max_connections)?;
    let setup = start(setup_db).await?;
    let run_id = submit(setup.addr, &user, options.tests).await?;
    register(setup.addr, &agent, options.agents).await?;
    setup.stop().await?;

    let (counted, before) = stats(None).await?;
    let measured_db = Database::new(url, db.schema(), options.max_connections)?;
    let server = start(measured_db).await?;
    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let agents: Vec<_> = (0..options.agents)
        .map(|i| {
            tokio::spawn(agent::run(
                Connection::new(server.addr, &agent),
                format!("bench-{i}"),
                options.batch,
                options.single_reports,
                completed.clone(),
                options.tests as u64,
            ))
        })
        .collect();
    let mut claims = Vec::new();
    let mut reports = Vec::new();
    let mut empty_claims = 0;
    for task in agents {
        let tally = task
            .await
            .map_err(|e| FleetBenchError::Agent(e.to_string()))??;
        claims.extend(tally.claims);
        reports.extend(tally.reports);
        empty_claims += tally.empty_claims;
    }
    let wall = started.elapsed();
    server.stop().await?;
    let (_, after) = stats(Some(counted)).await?;

    let client = db.client().await?;
    let check = client
        .query_one(
            "SELECT (SELECT state FROM runs WHERE run_id = $1),
                    (SELECT count(*) FROM results), (SELECT count(DISTINCT job_id) FROM results)",
            &[&run_id],
        )
        .await
        .map_err(|e| db.query_error("checking the benchmark's run", e))?;
    Ok(FleetReport {
        options: options.clone(),
        database: db.described().to_string(),
        completed: completed.load(std::sync::atomic::Ordering::Relaxed),
        wall,
        claims: Latency::of(claims),
        empty_claims,
        reports: Latency::of(reports),
        database_work: (counted, after - before),
        run_state: check.get(0),
        results: check.get(1),
        jobs_with_results: check.get(2),
    })
}

/// Submits one run of `tests` no-op jobs; its id.
async fn submit(
    addr: std::net::SocketAddr,
    user: &str,
    tests: usize,
) -> Result<i64, FleetBenchError> {
    let jobs: Vec<serde_json::Value> = (0..tests)
        .map(|i| {
            serde_json::json!({
                "test_id": format!("noop-{i:06}"), "spec": {"command": ["true"]},
                "cpu_millis": 100, "memory_bytes": 64 << 20, "expected_ms": (i % 100) as i64,
            })
        })
        .collect();
    let body = serde_json::json!({"name": "psy bench fleet", "jobs": jobs});
    let submitted: crate::api::runs::Submitted =
        Connection::new(addr, user).post("/api/runs", &body).await?;
    Ok(submitted.run_id)
}

/// Registers `agents` agents, so the fleet (and `/metrics`) knows them.
async fn register(
    addr: std::net::SocketAddr,
    token: &str,
    agents: usize,
) -> Result<(), FleetBenchError> {
    let mut conn = Connection::new(addr, token);
    for i in 0..agents {
        let body = serde_json::json!({"name": format!("bench-{i}"), "cpus": 1000.0, "memory_bytes": 1i64 << 50});
        let _: serde_json::Value = conn.post("/api/agents/register", &body).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Latency;
    use std::time::Duration;

    #[test]
    fn median_and_p99_are_nearest_ranks() {
        let ms = Duration::from_millis;
        let l = Latency::of((1..=100).rev().map(ms).collect());
        assert_eq!((l.count, l.median, l.p99), (100, ms(50), ms(99)));
        let l = Latency::of(vec![ms(7)]);
        assert_eq!((l.median, l.p99), (ms(7), ms(7)));
        let l = Latency::of(Vec::new());
        assert_eq!((l.count, l.median, l.p99), (0, ms(0), ms(0)));
    }
}
