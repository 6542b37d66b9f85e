//! `psy image ls|pull|import|rm`: the machine's image store (psy-image), where the images
//! tests run in are unpacked once and shared by every run.

use crate::exit::usage;
use clap::{Args, Subcommand};
use psy_image::{ImageError, ImageRef, ImageStore, Progress, PullOptions, PullPolicy};
use psy_report::format::{bytes, count};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// List the store's images: name, digest, layers, unpacked size and last use.
    Ls(StoreArg),
    /// Pull an image from a registry (`host[:port]/name[:tag|@sha256:...]`) and unpack its layers.
    Pull(PullArgs),
    /// Import a docker-archive file or an OCI layout directory (`DIR[:tag]`) and unpack its layers.
    Import(ImportArgs),
    /// Remove images (by name, digest or digest prefix) and the layers no other image uses.
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// The image store (default: $PSY_IMAGE_STORE, else /var/lib/psyduck/images as root and
    /// ~/.local/share/psyduck/images otherwise).
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The image, e.g. `127.0.0.1:5000/team/app:1` or `docker.io/library/debian@sha256:...`.
    pub(crate) reference: String,
    /// A registry (`host` or `host:port`) to reach over plain HTTP (loopback ones always are).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// A docker-archive (`docker save`, `podman save`) or an OCI layout directory, `DIR:tag` for
    /// one of several images.
    pub(crate) file: String,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Images to remove: names or digests (or digest prefixes) as `psy image ls` shows them.
    #[arg(required = true, value_name = "NAME")]
    pub(crate) names: Vec<String>,
}

pub(crate) fn image(command: ImageCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImageCommand::Ls(args) => ls(&open(&args)?),
        ImageCommand::Pull(args) => {
            let image = ImageRef::parse(&args.reference, &cwd()?).map_err(user_error)?;
            if !matches!(image, ImageRef::Registry(_)) {
                return Err(usage(format!(
                    "{}: not a registry reference but {}; use `psy image import` for files and directories",
                    args.reference,
                    kind(&image)
                )));
            }
            let opts = PullOptions {
                insecure_registries: args.insecure_registries,
                policy: PullPolicy::Always,
                credentials: None,
            };
            resolve(&open(&args.store)?, &image, &opts)
        }
        ImageCommand::Import(args) => {
            let image = ImageRef::parse(&args.file, &cwd()?).map_err(user_error)?;
            if !matches!(
                image,
                ImageRef::DockerArchive(_) | ImageRef::OciLayout { .. }
            ) {
                return Err(usage(format!(
                    "{}: not a docker-archive file nor an OCI layout directory but {}; registry images are fetched with `psy image pull`",
                    args.file,
                    kind(&image)
                )));
            }
            resolve(&open(&args.store)?, &image, &PullOptions::default())
        }
        ImageCommand::Rm(args) => {
            let store = open(&args.store)?;
            for name in &args.names {
                let report = store.remove(name).map_err(user_error)?;
                eprintln!(
                    "removed {name}: {} of {} freed",
                    count(report.layers, "unpacked layer"),
                    bytes(report.bytes)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn kind(image: &ImageRef) -> &'static str {
    match image {
        ImageRef::DockerArchive(_) => "a docker-archive",
        ImageRef::OciLayout { .. } => "an OCI layout",
        ImageRef::Registry(_) => "a registry reference",
        ImageRef::RootfsDir(_) => "a root file system directory (used in place: nothing to import)",
        ImageRef::Host => "the host's root",
    }
}

fn open(args: &StoreArg) -> anyhow::Result<ImageStore> {
    let dir = args.store.clone().unwrap_or_else(ImageStore::default_dir);
    Ok(ImageStore::open(dir)?)
}

fn cwd() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_dir()?)
}

/// Exit 2 for what the user can fix (a reference, a file, a registry's answer); 3 for the
/// store's own I/O.
pub(crate) fn user_error(error: ImageError) -> anyhow::Error {
    match error {
        ImageError::Io { .. } | ImageError::Layer { .. } => error.into(),
        other => usage(other),
    }
}

/// Prints a line per layer as it is unpacked or found unpacked.
#[derive(Debug)]
struct LayerLines;

impl Progress for LayerLines {
    fn layer_finished(&self, layer: &str, reused: bool) {
        let short = layer.get(..19).unwrap_or(layer);
        eprintln!(
            "  layer {short}: {}",
            if reused {
                "already unpacked"
            } else {
                "unpacked"
            }
        );
    }
}

fn resolve(store: &ImageStore, image: &ImageRef, opts: &PullOptions) -> anyhow::Result<ExitCode> {
    eprintln!("{image}: into {}", store.dir().display());
    let resolved = store
        .resolve(image, opts, &LayerLines)
        .map_err(user_error)?;
    eprintln!("{image}: {} ready", count(resolved.layers.len(), "layer"));
    println!("{}", resolved.digest);
    Ok(ExitCode::SUCCESS)
}

fn ls(store: &ImageStore) -> anyhow::Result<ExitCode> {
    let images = store.list()?;
    if images.is_empty() {
        eprintln!("no images in {}", store.dir().display());
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = images
        .iter()
        .flat_map(|info| {
            let names = if info.names.is_empty() {
                vec!["<none>".to_string()]
            } else {
                info.names.clone()
            };
            names.into_iter().map(move |name| {
                [
                    name,
                    info.digest.get(..19).unwrap_or(&info.digest).to_string(),
                    info.layers.to_string(),
                    bytes(info.size),
                    ago(info.used),
                ]
            })
        })
        .collect();
    let header = ["NAME", "DIGEST", "LAYERS", "SIZE", "USED"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// `just now`, `5m ago`, `3h ago`, `12d ago`.
fn ago(time: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(time)
        .map_or(0, |d| d.as_secs());
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}
