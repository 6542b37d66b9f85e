//! sha256 digests: parsing `sha256:<hex>`, hashing bytes and streams while they are read.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

/// The 64 hex digits of a `sha256:<hex>` digest, or `Err` for any other form.
pub(crate) fn hex_of(digest: &str) -> Result<&str, ()> {
    let hex = digest.strip_prefix("sha256:").ok_or(())?;
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(hex)
    } else {
        Err(())
    }
}

/// Like [`hex_of`], with the error naming `image`.
pub(crate) fn checked_hex<'a>(image: &str, digest: &'a str) -> Result<&'a str, crate::ImageError> {
    hex_of(digest).map_err(|()| crate::ImageError::BadDigest {
        image: image.to_string(),
        digest: digest.to_string(),
    })
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format_digest(Sha256::digest(bytes).as_slice())
}

fn format_digest(hash: &[u8]) -> String {
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Checks that `bytes` have `expected` as digest.
pub(crate) fn verify(
    image: &str,
    what: &str,
    expected: &str,
    bytes: &[u8],
) -> Result<(), crate::ImageError> {
    checked_hex(image, expected)?;
    let actual = sha256(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(crate::ImageError::DigestMismatch {
            image: image.to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// A reader that hashes (and counts) what passes through it.
#[derive(Debug)]
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left (a tar's trailing padding, say) so the digest covers the whole
    /// stream, then returns `sha256:<hex>` and the byte count.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format_digest(self.hasher.finalize().as_slice()), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_hash_like_bytes() {
        let data = b"hello layer".repeat(1000);
        let mut reader = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish().unwrap(), (sha256(&data), data.len() as u64));
    }

    #[test]
    fn digests_are_checked() {
        assert!(hex_of(&sha256(b"x")).is_ok());
        assert!(hex_of("sha256:ABC").is_err());
        assert!(hex_of("sha512:00").is_err());
        let wrong = sha256(b"y");
        let err = verify("img", "config", &wrong, b"x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config has digest") && err.contains(&wrong),
            "{err}"
        );
    }
}
