//! The image `psy bench unpack` pulls when given none: generated layers of real-looking files
//! (thousands of small text files, a few large half-compressible binaries), deterministic from
//! a seed, written as a docker-archive for skopeo to push (gzip-compressed on the way).

use psy_image::testing::{TestImage, TestLayer};
use std::path::Path;

/// Layers of the generated image.
const LAYERS: usize = 4;
/// Large files per layer: about half of each layer's bytes.
const LARGE_PER_LAYER: usize = 2;
/// Words of the small files' text: repetitive enough to compress as source code does.
const WORDS: &[&str] = &[
    "fn", "let", "mut", "self", "return", "match", "impl", "struct", "pub", "use", "crate",
    "error", "path", "layer", "image", "config", "value", "String", "Vec", "Option", "Some",
    "None", "Ok", "Err", "=>", "{", "}", "(", ");", "&", "::", "0", "1", "42", "true", "false",
];

/// xorshift64*: fast, deterministic, good enough for file contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A text file of about `len` bytes.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    out
}

/// A binary of `len` bytes: random 4 KiB blocks alternating with runs of few distinct bytes,
/// so it compresses about 2:1, as executables and libraries do.
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let block = 4096.min(len - out.len());
        if rng.below(2) == 0 {
            out.extend((0..block).map(|_| rng.next() as u8));
        } else {
            let fill = rng.next() as u8;
            out.extend((0..block).map(|i| if i % 64 == 0 { rng.next() as u8 } else { fill }));
        }
    }
    out
}

/// An image of about `mib` MiB of file content in [`LAYERS`] layers; returns its uncompressed
/// file bytes and file count.
pub(crate) fn generate(mib: u64, seed: u64) -> (TestImage, u64, u64) {
    let mut rng = Rng(seed | 1);
    let per_layer = (mib << 20) / LAYERS as u64;
    let (mut bytes, mut files) = (0, 0);
    let mut layers = Vec::new();
    for l in 0..LAYERS {
        let mut layer = TestLayer::new()
            .dir("usr", 0o755)
            .dir("usr/lib", 0o755)
            .dir(&format!("usr/lib/bench{l}"), 0o755)
            .dir("usr/share", 0o755)
            .dir(&format!("usr/share/bench{l}"), 0o755);
        let large = per_layer / 2 / LARGE_PER_LAYER as u64;
        for f in 0..LARGE_PER_LAYER {
            let content = binary(&mut rng, large as usize);
            layer = layer.file(&format!("usr/lib/bench{l}/lib{f}.so"), &content, 0o755);
            bytes += large;
            files += 1;
        }
        let mut small_bytes = 0;
        let mut dir = 0;
        while small_bytes < per_layer / 2 {
            if files % 50 == 0 {
                dir += 1;
                layer = layer.dir(&format!("usr/share/bench{l}/d{dir}"), 0o755);
            }
            // 200 B to 16 KiB, most of them small.
            let len = 200 + (rng.below(64) * rng.below(64) * 4) as usize;
            let content = text(&mut rng, len);
            small_bytes += content.len() as u64;
            layer = layer.file(
                &format!("usr/share/bench{l}/d{dir}/f{files}.rs"),
                &content,
                0o644,
            );
            files += 1;
        }
        bytes += small_bytes;
        layers.push(layer);
    }
    (TestImage::new(layers), bytes, files)
}

/// Writes the generated image as a docker-archive at `path`.
pub(crate) fn write(image: &TestImage, path: &Path) {
    image.write_docker_archive(path, Some("bench/unpack:generated"));
}

#[cfg(test)]
mod tests {
    use super::generate;

    #[test]
    fn generated_image_has_the_asked_size_and_is_deterministic() {
        let (image, bytes, files) = generate(4, 7);
        let asked = 4u64 << 20;
        assert!(bytes >= asked && bytes < asked + asked / 20, "{bytes}");
        assert!(files > 200, "{files} files");
        assert_eq!(image.layers.len(), super::LAYERS);
        let again = generate(4, 7).0;
        assert_eq!(image.layers[3].tar(), again.layers[3].tar());
        assert_ne!(image.layers[3].tar(), generate(4, 8).0.layers[3].tar());
    }
}
