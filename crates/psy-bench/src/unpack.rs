//! `psy bench unpack`: pull + verify + unpack of an image of about 100 MiB from a real local
//! registry (Debian's `docker-registry` on a free loopback port), by psy's image store into an
//! empty store and by `skopeo copy` + `umoci unpack` into an OCI layout and a bundle, in turn
//! in one run; then psy's second pull of the same tag (the cache hit of `psy image pull`).

use super::stats::Series;
use crate::unpack_image;
use clap::Args;
use psy_image::testing::{have, TestRegistry};
use psy_image::{ImageRef, ImageStore, NoProgress, PullOptions, PullPolicy};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// Rounds (each: one psy pull, one skopeo + umoci, one psy cache hit).
    #[arg(short = 'n', long, default_value_t = 3)]
    iterations: usize,
    /// The image to serve, as skopeo names a source (`oci:DIR:TAG`, `docker-archive:FILE`),
    /// e.g. `oci:examples/debian/images/debian:bookworm`; default: a generated one.
    #[arg(long)]
    image: Option<String>,
    /// MiB of file content of the generated image.
    #[arg(long, default_value_t = 100)]
    mib: u64,
    /// Seed of the generated image.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where stores, layouts and bundles are written (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The tools the peer series needs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
];

fn run_tool(argv: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The compressed bytes of the image's layers, from the OCI layout skopeo wrote.
fn compressed_bytes(layout: &Path) -> anyhow::Result<u64> {
    let read = |p: PathBuf| -> anyhow::Result<serde_json::Value> {
        let bytes = std::fs::read(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    let blob = |digest: &str| layout.join("blobs").join(digest.replacen(':', "/", 1));
    let index = read(layout.join("index.json"))?;
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{}: no manifest in index.json", layout.display()))?;
    let manifest = read(blob(digest))?;
    Ok(manifest["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["size"].as_u64()).sum())
        .unwrap_or(0))
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

pub fn run(args: UnpackArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    if let Some((tool, package)) = TOOLS.iter().find(|(t, _)| !have(t)) {
        return Err(crate::error::usage(format!(
            "{tool} is missing: apt-get install -y {package}"
        )));
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(&base)?;
    let registry =
        TestRegistry::start().ok_or_else(|| anyhow::anyhow!("could not start docker-registry"))?;
    let name = "bench/unpack:v1";
    let (source, described) = match &args.image {
        Some(source) => (source.clone(), source.clone()),
        None => {
            let (image, bytes, files) = unpack_image::generate(args.mib, args.seed);
            let archive = work.path().join("generated.tar");
            unpack_image::write(&image, &archive);
            let described = format!(
                "generated: {} layers, {files} files, {:.1} MiB of content (seed {})",
                image.layers.len(),
                bytes as f64 / (1 << 20) as f64,
                args.seed
            );
            (format!("docker-archive:{}", archive.display()), described)
        }
    };
    registry.push_from(&source, name, &[]);
    let _ = std::fs::remove_file(work.path().join("generated.tar"));
    let reference = format!("{}/{name}", registry.host());
    let image = ImageRef::parse(&reference, work.path())?;
    let opts = PullOptions {
        policy: PullPolicy::Always,
        ..PullOptions::default()
    };

    let (mut psy, mut hit, mut peer) = (Vec::new(), Vec::new(), Vec::new());
    let (mut compressed, mut uncompressed) = (0, 0);
    for round in 0..args.iterations {
        // psy: an empty store, then the same pull again (manifest asked, layers reused).
        let store_dir = work.path().join(format!("store-{round}"));
        let store = ImageStore::open(&store_dir)?;
        let t = Instant::now();
        store.resolve(&image, &opts, &NoProgress)?;
        psy.push(t.elapsed());
        let t = Instant::now();
        store.resolve(&image, &opts, &NoProgress)?;
        hit.push(t.elapsed());
        uncompressed = store.list()?.iter().map(|i| i.size).sum();
        std::fs::remove_dir_all(&store_dir)?;

        // skopeo copy into an OCI layout, then umoci unpack into a bundle.
        let layout = work.path().join(format!("oci-{round}"));
        let bundle = work.path().join(format!("bundle-{round}"));
        let layout_ref = format!("{}:v1", layout.display());
        let t = Instant::now();
        run_tool(&[
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{layout_ref}"),
        ])?;
        run_tool(&[
            "umoci",
            "unpack",
            "--image",
            &layout_ref,
            &bundle.display().to_string(),
        ])?;
        peer.push(t.elapsed());
        compressed = compressed_bytes(&layout)?;
        std::fs::remove_dir_all(&layout)?;
        std::fs::remove_dir_all(&bundle)?;
    }

    let mut out = std::io::stdout().lock();
    writeln!(out, "psy bench unpack: {described}")?;
    writeln!(
        out,
        "served by docker-registry at {reference}: {:.1} MiB compressed (gzip), {:.1} MiB of unpacked file content; {} rounds",
        compressed as f64 / (1 << 20) as f64,
        uncompressed as f64 / (1 << 20) as f64,
        args.iterations
    )?;
    writeln!(out, "{}", Series::header())?;
    let series = [
        ("psy image pull, empty store", psy),
        ("skopeo copy + umoci unpack", peer),
        ("psy image pull, cache hit", hit),
    ];
    let mut medians = Vec::new();
    for (label, samples) in series {
        let s = Series::new(label, samples);
        writeln!(out, "{}", s.row())?;
        medians.push((label, s.median));
    }
    writeln!(out)?;
    for (label, median) in &medians[..2] {
        writeln!(
            out,
            "{label:30} median {:>7.1} MiB/s compressed, {:>7.1} MiB/s unpacked",
            mib_per_s(compressed, *median),
            mib_per_s(uncompressed, *median)
        )?;
    }
    writeln!(
        out,
        "psy / (skopeo + umoci) median time: {:.2}",
        medians[0].1.as_secs_f64() / medians[1].1.as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}
