//! Server schema versions 2, 4, 5 and 6: the fleet's work queue (runs, their jobs, leases, results),
//! and leases bound to the token that claimed them.
//!
//! Every fact the queue needs lives in these tables, so any number of servers can share them.
//! Concurrency rests on row locks alone: claims take candidate jobs `FOR UPDATE SKIP LOCKED`
//! (no two claimers ever wait on or get the same job), a result moves its job and ends its
//! lease in one statement, and a job has at most one held lease (`leases_held`). Fencing tokens come from a
//! sequence, so every lease ever granted has a token larger than those before it.
//!
//! Leases and results name their job without a foreign key: they are only ever written from
//! the locked job row (claim, report), and a key check on every one of the hottest statements
//! costs more than it guards. Whatever deletes jobs must delete their leases and results.

/// The migration, applied once by [`crate::migrate`].
pub const V2: &str = r#"
CREATE TABLE runs (
    run_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT,
    submitter   TEXT NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
    metadata    JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX runs_active ON runs (priority DESC, run_id) WHERE state IN ('queued', 'running');

CREATE TABLE jobs (
    job_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs ON DELETE CASCADE,
    test_id      TEXT NOT NULL,
    spec         JSONB NOT NULL,
    cpu_millis   BIGINT NOT NULL CHECK (cpu_millis >= 0),
    memory_bytes BIGINT NOT NULL CHECK (memory_bytes >= 0),
    labels       JSONB NOT NULL DEFAULT '{}',
    expected_ms  BIGINT NOT NULL DEFAULT 0 CHECK (expected_ms >= 0),
    state        TEXT NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'leased', 'done', 'cancelled')),
    attempt      INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    max_attempts INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1)
);
-- Test ids are unique within a run (checked at submission, when all of a run's jobs arrive in
-- one request), not by a unique index that every change of state would have to check again.
CREATE INDEX jobs_run ON jobs (run_id);
-- The claim walks a run's queued jobs longest-expected first.
CREATE INDEX jobs_queued ON jobs (run_id, expected_ms DESC, job_id) WHERE state = 'queued';
-- Fair share counts each run's leased jobs.
CREATE INDEX jobs_leased ON jobs (run_id) WHERE state = 'leased';

CREATE SEQUENCE fencing_tokens;

CREATE TABLE leases (
    lease_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        BIGINT NOT NULL,
    attempt       INTEGER NOT NULL,
    agent         TEXT NOT NULL,
    fencing_token BIGINT NOT NULL UNIQUE DEFAULT nextval('fencing_tokens'),
    granted_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    -- NULL while held; why it ended otherwise.
    outcome       TEXT CHECK (outcome IN ('reported', 'expired', 'cancelled')),
    ended_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX leases_held ON leases (job_id) WHERE outcome IS NULL;
CREATE INDEX leases_expiry ON leases (expires_at) WHERE outcome IS NULL;
CREATE INDEX leases_expired ON leases (lease_id) WHERE outcome = 'expired';

CREATE TABLE results (
    job_id        BIGINT NOT NULL,
    attempt       INTEGER NOT NULL,
    lease_id      BIGINT NOT NULL UNIQUE,
    fencing_token BIGINT NOT NULL,
    agent         TEXT NOT NULL,
    status        TEXT NOT NULL,
    duration_ms   BIGINT NOT NULL CHECK (duration_ms >= 0),
    exit_code     INTEGER,
    signal        INTEGER,
    output        TEXT,
    output_ref    TEXT,
    recorded_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
"#;

/// Version 4: a lease remembers the token that claimed it (`token_id`), so that only that
/// token may heartbeat it or report its result ([`lease`](super::lease)). Leases held at the
/// upgrade are bound to the token their agent registered with. A lease without a token (its
/// agent never registered, or an older server granted it during a rolling upgrade) is bound to
/// its agent's name only, so that an upgrade refuses no agent's work in flight.
pub const V4: &str = r#"
ALTER TABLE leases ADD COLUMN token_id BIGINT;
UPDATE leases l SET token_id = a.token_id
FROM agents a WHERE a.name = l.agent AND l.outcome IS NULL;
"#;

/// Version 5: a lease may end `released`: its agent gave it back before starting its attempt
/// (claimed ahead, then stopping), so its job was queued again at once ([`release`](super::release)).
pub const V5: &str = r#"
ALTER TABLE leases DROP CONSTRAINT leases_outcome_check;
ALTER TABLE leases ADD CONSTRAINT leases_outcome_check
    CHECK (outcome IN ('reported', 'expired', 'cancelled', 'released'));
"#;

/// Version 7: a result names its attempt's logs (`results.logs`: `{"out": "sha256:...",
/// "err": ..., "scenario.jsonl": ..., "node.NAME.out": ...}`), uploaded by the agent as blobs
/// before it reports; `NULL` when it sent none.
pub const V7: &str = r#"
ALTER TABLE results ADD COLUMN logs JSONB;
"#;

/// Version 8: every change of a job records the transaction that made it (`jobs.changed`,
/// set by a trigger on every update, whichever statement makes it), so that a client
/// following a run (`psy submit --wait`) asks only for the jobs changed since its last look
/// (`GET /api/runs/{id}/changes?after=CURSOR`, [`runs::changes`](super::runs::changes)).
/// Needs PostgreSQL 13 (`xid8`).
pub const V8: &str = r#"
ALTER TABLE jobs ADD COLUMN changed xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX jobs_changed ON jobs (run_id, changed);
CREATE FUNCTION jobs_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed := pg_current_xact_id();
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_changed BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_mark_changed();
"#;

/// Version 6: every registration of an agent gets a number from a sequence
/// (`agents.registration`). Registering again under a name takes it over: the leases still
/// held under that name are ended (`expired`) and their jobs queued again at once, and claims
/// naming the previous registration are refused ([`agents`](crate::api::agents)).
pub const V6: &str = r#"
CREATE SEQUENCE agent_registrations;
ALTER TABLE agents ADD COLUMN registration BIGINT NOT NULL DEFAULT nextval('agent_registrations');
"#;
