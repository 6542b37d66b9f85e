//! Layer compression, detected from the first bytes (media types are not always right):
//! gzip, zstd (possibly several frames) or a plain tar.

use flate2::bufread::MultiGzDecoder;
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{self, BufRead, BufReader, Read};

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
        (Compression::Zstd, Box::new(ZstdFrames::Between(whole)))
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

/// A zstd stream of one or more frames, decoded one after the other (as `zstd -d` does).
enum ZstdFrames<R: BufRead> {
    Between(R),
    InFrame(Box<StreamingDecoder<R, FrameDecoder>>),
    Done,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(self, ZstdFrames::Done) {
                ZstdFrames::Done => return Ok(0),
                ZstdFrames::Between(mut source) => {
                    if source.fill_buf()?.is_empty() {
                        return Ok(0);
                    }
                    let decoder = StreamingDecoder::new(source).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                    })?;
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
        // Two frames, as some encoders write.
        let two = [zst.clone(), zst].concat();
        assert_eq!(roundtrip(&two).1, [data.clone(), data].concat());
        assert_eq!(roundtrip(b"ab"), (Compression::None, b"ab".to_vec()));
    }
}
