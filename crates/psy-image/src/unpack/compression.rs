//! Layer compression, detected from the first bytes (media types are not always right):
//! gzip, zstd (possibly several frames) or a plain tar.

use flate2::bufread::MultiGzDecoder;
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{self, BufReader, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Wraps `reader` in the decompressor its first bytes call for.
pub(crate) fn decompress<'a, R: Read + Send + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut head = [0u8; 4];
    let n = read_full(&mut reader, &mut head)?;
    let head = &head[..n];
    let whole = BufReader::with_capacity(256 * 1024, io::Cursor::new(head.to_vec()).chain(reader));
    Ok(if head.starts_with(&GZIP_MAGIC) {
        (Compression::Gzip, Box::new(MultiGzDecoder::new(whole)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        (
            Compression::Zstd,
            Box::new(ZstdFrames::Between(Pushback {
                head: Vec::new(),
                inner: whole,
            })),
        )
    } else {
        (Compression::None, Box::new(whole))
    })
}

fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A zstd stream of one or more frames, decoded one after the other (as `zstd -d` does);
/// skippable frames (zstd:chunked keeps its table of contents in one) are skipped.
enum ZstdFrames<R: Read> {
    Between(Pushback<R>),
    InFrame(Box<StreamingDecoder<Pushback<R>, FrameDecoder>>),
    Done,
}

/// Skippable frames have magic numbers 0x184D2A50 to 0x184D2A5F, then a 4-byte length.
const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(self, ZstdFrames::Done) {
                ZstdFrames::Done => return Ok(0),
                ZstdFrames::Between(mut source) => {
                    let head = source.peek(8)?;
                    if head.is_empty() {
                        return Ok(0);
                    }
                    let word = |at: usize| {
                        head.get(at..at + 4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    };
                    if word(0).is_some_and(|magic| SKIPPABLE_MAGIC.contains(&magic)) {
                        let length =
                            word(4).ok_or_else(|| invalid("a truncated skippable frame".into()))?;
                        source.skip(8 + u64::from(length))?;
                        *self = ZstdFrames::Between(source);
                        continue;
                    }
                    let decoder =
                        StreamingDecoder::new(source).map_err(|e| invalid(format!("zstd: {e}")))?;
                    *self = ZstdFrames::InFrame(Box::new(decoder));
                }
                ZstdFrames::InFrame(mut decoder) => {
                    let n = decoder.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        *self = ZstdFrames::InFrame(decoder);
                        return Ok(n);
                    }
                    *self = ZstdFrames::Between(decoder.into_inner());
                }
            }
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A reader that can look a few bytes ahead (a frame's header) without consuming them.
struct Pushback<R> {
    head: Vec<u8>,
    inner: R,
}

impl<R: Read> Pushback<R> {
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.head.len() < n {
            let mut byte = [0u8; 8];
            let want = n - self.head.len();
            match self.inner.read(&mut byte[..want.min(8)])? {
                0 => break,
                k => self.head.extend_from_slice(&byte[..k]),
            }
        }
        Ok(&self.head)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let from_head = self
            .head
            .len()
            .min(usize::try_from(n).unwrap_or(usize::MAX));
        self.head.drain(..from_head);
        let rest = n - from_head as u64;
        if io::copy(&mut (&mut self.inner).take(rest), &mut io::sink())? < rest {
            return Err(invalid("a truncated skippable frame".into()));
        }
        Ok(())
    }
}

impl<R: Read> Read for Pushback<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head.is_empty() {
            return self.inner.read(buf);
        }
        let n = self.head.len().min(buf.len());
        buf[..n].copy_from_slice(&self.head[..n]);
        self.head.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(blob: &[u8]) -> (Compression, Vec<u8>) {
        let (kind, mut reader) = decompress(blob).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (kind, out)
    }

    #[test]
    fn detects_each_compression_by_magic() {
        let data = b"layer bytes ".repeat(5000);
        assert_eq!(roundtrip(&data), (Compression::None, data.clone()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        assert_eq!(
            roundtrip(&gz.finish().unwrap()),
            (Compression::Gzip, data.clone())
        );
        let zst = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(roundtrip(&zst), (Compression::Zstd, data.clone()));
        // Two frames with a skippable frame between, as zstd:chunked writes.
        let skippable = [
            &0x184D_2A50u32.to_le_bytes()[..],
            &3u32.to_le_bytes(),
            b"toc",
        ]
        .concat();
        let two = [zst.clone(), skippable, zst].concat();
        assert_eq!(roundtrip(&two).1, [data.clone(), data].concat());
        assert_eq!(roundtrip(b"ab"), (Compression::None, b"ab".to_vec()));
    }
}
