//! `psy submit`: the selected tests of the working tree, run on the fleet. Loads and expands
//! the manifest here (as `psy list`), sends a snapshot of the tree (only the files the server
//! lacks), queues one job per test, prints the run id; with `--wait`, follows the run and exits
//! as `psy run` would.

use super::client::{connect, failed};
use super::context::{open_store, selected_tests};
use super::remote_logs::RemoteLogs;
use crate::cli::{MessageFormat, SubmitArgs};
use crate::exit::{usage, TESTS_FAILED};
use anyhow::Context;
use psy_fleet::{JobRequest, JobSpec, ProjectSource, Submission};
use psy_model::TestSpec;
use psy_report::{format, Fanout, HumanOptions, HumanReporter, OutputSource, Reporter, Verbosity};
use psy_runner::layout::StateDir;
use psy_snapshot::Snapshot;
use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn submit(args: SubmitArgs, verbosity: Verbosity) -> anyhow::Result<ExitCode> {
    let (manifest, tests) = selected_tests(&args.select, verbosity)?;
    let client = connect(&args.server)?;
    let state = StateDir::new(&manifest.dir);
    let expected = if state.database().exists() {
        open_store(&state)?.expected_durations()?
    } else {
        Default::default()
    };

    let root = psy_snapshot::project_root(&manifest.dir);
    let manifest_file = manifest
        .path
        .file_name()
        .ok_or_else(|| usage(format!("{}: not a file", manifest.path.display())))?;
    let manifest_rel = relative(&manifest.dir.join(manifest_file), &root)?;
    let local = Snapshot::of_worktree(&root)
        .with_context(|| format!("taking a snapshot of {}", root.display()))?;
    if !local
        .snapshot
        .entries
        .iter()
        .any(|e| e.path == manifest_rel)
    {
        return Err(usage(format!(
            "{}: the manifest is not part of the snapshot of {} (is it ignored by git?)",
            manifest.path.display(),
            root.display()
        )));
    }
    let uploaded = psy_fleet::upload(&client, &local).map_err(|e| match e {
        psy_fleet::UploadError::Server(e) => failed(e),
        psy_fleet::UploadError::Local(e) => anyhow::Error::new(e),
    })?;
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "snapshot {}: {} files ({}); uploaded {} of {} blobs ({})",
            uploaded.digest,
            uploaded.files,
            format::bytes(local.snapshot.total_size()),
            uploaded.uploaded_blobs,
            uploaded.blobs,
            format::bytes(uploaded.uploaded_bytes),
        );
    }

    let source = ProjectSource::Snapshot {
        digest: uploaded.digest.clone(),
    };
    let jobs = tests
        .iter()
        .map(|t| job(t, &source, &manifest_rel, expected.get(&t.id).copied()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = Submission {
        name: root.file_name().map(|n| n.to_string_lossy().into_owned()),
        priority: args.priority,
        metadata: Some(serde_json::json!({
            "snapshot": uploaded.digest,
            "manifest": manifest_rel,
            "root": root.display().to_string(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
        })),
        jobs,
    };
    let run_id = client.submit_run(&run).map_err(failed)?;
    if args.message_format == MessageFormat::Json && !args.wait {
        println!(
            "{}",
            serde_json::json!({"run_id": run_id, "snapshot": uploaded.digest, "tests": tests.len(),
                               "uploaded_blobs": uploaded.uploaded_blobs, "blobs": uploaded.blobs})
        );
    } else if args.message_format == MessageFormat::Human {
        println!("{run_id}");
    }
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "submitted run {run_id}: {} to {} (psy show {run_id} --server; psy cancel {run_id})",
            format::count(tests.len(), "test"),
            client.base()
        );
    }
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }

    let logs = Arc::new(RemoteLogs::new(run_id).context("a directory for the tests' output")?);
    let output = OutputSource::store(logs.clone());
    let mut reporters = Fanout::new(Vec::new());
    reporters.push(Box::new(HumanReporter::stderr(HumanOptions {
        verbosity,
        logs: output.clone(),
        show_again: "psy show {run} --server".to_string(),
        ..HumanOptions::default()
    })));
    super::run_report::push_machine_reporters(
        &mut reporters,
        args.message_format,
        args.junit.as_deref(),
        &tests,
        output,
    );
    let resources: HashMap<String, psy_model::Resources> = tests
        .iter()
        .map(|t| (t.id.to_string(), t.resources.clone()))
        .collect();
    let summary = super::wait::follow(&client, run_id, &resources, &logs, &mut reporters)?;
    reporters.finish().context("finishing the reports")?;
    Ok(if summary.failures(false) > 0 {
        ExitCode::from(TESTS_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The job of test `t`: its spec, resources, labels, expected duration and attempts.
fn job(
    t: &TestSpec,
    source: &ProjectSource,
    manifest: &str,
    expected: Option<Duration>,
) -> anyhow::Result<JobRequest> {
    let spec = JobSpec {
        source: source.clone(),
        manifest: manifest.to_string(),
        test: t.id.to_string(),
    };
    Ok(JobRequest {
        test_id: t.id.to_string(),
        spec: serde_json::to_value(spec).context("encoding a job spec")?,
        cpu_millis: i64::from(t.resources.cpu_millis),
        memory_bytes: i64::try_from(t.resources.memory_bytes).unwrap_or(i64::MAX),
        labels: t.labels.clone(),
        expected_ms: expected.map_or(0, |d| d.as_millis() as i64),
        max_attempts: i32::try_from(t.retries.saturating_add(1)).unwrap_or(i32::MAX),
    })
}

/// `path` relative to `root`, `/`-separated, as snapshot entries name files.
fn relative(path: &Path, root: &Path) -> anyhow::Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| {
        usage(format!(
            "{}: the manifest is outside the tree being sent ({})",
            path.display(),
            root.display()
        ))
    })?;
    rel.to_str()
        .map(str::to_string)
        .ok_or_else(|| usage(format!("{}: not a UTF-8 path", path.display())))
}
