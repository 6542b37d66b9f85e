//! The four measurements: O_DIRECT IO on one open file from a pool of threads for a fixed time.
//! O_DIRECT keeps the page cache out of the figures (what the disk does, not what memory does),
//! and the threads keep several requests in flight, as concurrent tests do.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// O_DIRECT needs buffers, offsets and lengths aligned to the device's logical block size;
/// 4 KiB covers every common one (512 B and 4 KiB sectors).
const ALIGN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    Sequential,
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// One measurement: what to do, with which block size, from how many threads (= queue depth).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phase {
    pub(crate) pattern: Pattern,
    pub(crate) direction: Direction,
    pub(crate) block: usize,
    pub(crate) threads: usize,
}

impl Phase {
    /// `"sequential write, 1MiB blocks x 4 threads"`.
    pub(crate) fn describe(&self) -> String {
        let pattern = match self.pattern {
            Pattern::Sequential => "sequential",
            Pattern::Random => "random",
        };
        let direction = match self.direction {
            Direction::Read => "read",
            Direction::Write => "write",
        };
        format!(
            "{pattern} {direction}, {} blocks x {} threads",
            psy_config::format_size(self.block as u64),
            self.threads
        )
    }
}

/// In the order they run: the sequential write also fills the file the others read.
pub(crate) const PHASES: [Phase; 4] = [
    Phase {
        pattern: Pattern::Sequential,
        direction: Direction::Write,
        block: 1 << 20,
        threads: 4,
    },
    Phase {
        pattern: Pattern::Sequential,
        direction: Direction::Read,
        block: 1 << 20,
        threads: 4,
    },
    // Small random IO needs a deep queue to reach what SSDs and virtual disks can do.
    Phase {
        pattern: Pattern::Random,
        direction: Direction::Write,
        block: 4096,
        threads: 16,
    },
    Phase {
        pattern: Pattern::Random,
        direction: Direction::Read,
        block: 4096,
        threads: 16,
    },
];

/// What one phase did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measured {
    pub(crate) ops: u64,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    /// The end of the data now in the file from offset 0 (sequential writes only: what the
    /// following phases may read without hitting holes, which the disk never reads).
    pub(crate) filled: u64,
}

impl Measured {
    pub(crate) fn bytes_per_second(&self) -> u64 {
        (self.bytes as f64 / self.elapsed.as_secs_f64()) as u64
    }

    pub(crate) fn ops_per_second(&self) -> u64 {
        (self.ops as f64 / self.elapsed.as_secs_f64()) as u64
    }
}

/// Runs `phase` on `file` over its first `span` bytes for about `duration`. Writes end with
/// `fdatasync`, inside the timing, so data left in the disk's cache is paid for.
pub(crate) fn run(
    file: &File,
    phase: Phase,
    span: u64,
    duration: Duration,
) -> std::io::Result<Measured> {
    let blocks = span / phase.block as u64;
    if blocks == 0 {
        return Err(std::io::Error::other(format!(
            "nothing to {}: only {span} bytes written",
            phase.describe()
        )));
    }
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + duration;
    let ops = std::thread::scope(|s| {
        let workers: Vec<_> = (0..phase.threads)
            .map(|i| {
                let next = &next;
                s.spawn(move || worker(file, phase, blocks, deadline, next, seed(i)))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("an IO worker panicked"))
            .sum::<std::io::Result<u64>>()
    })?;
    if phase.direction == Direction::Write {
        file.sync_data()?;
    }
    let elapsed = start.elapsed();
    let filled = match (phase.pattern, phase.direction) {
        (Pattern::Sequential, Direction::Write) => {
            next.into_inner().min(blocks) * phase.block as u64
        }
        _ => 0,
    };
    Ok(Measured {
        ops,
        bytes: ops * phase.block as u64,
        elapsed,
        filled,
    })
}

fn worker(
    file: &File,
    phase: Phase,
    blocks: u64,
    deadline: Instant,
    next: &AtomicU64,
    seed: u64,
) -> std::io::Result<u64> {
    let mut buf = AlignedBuf::new(phase.block);
    let mut rng = XorShift(seed);
    // Not zeros: some storage compresses or deduplicates them, which would flatter the figures.
    for chunk in buf.as_mut().chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    let mut ops = 0;
    // At least one request per thread, however late the thread starts on a busy machine.
    loop {
        let index = match phase.pattern {
            // Threads take consecutive blocks, so the disk sees one stream several requests deep.
            Pattern::Sequential => next.fetch_add(1, Ordering::Relaxed) % blocks,
            Pattern::Random => rng.next() % blocks,
        };
        let offset = index * phase.block as u64;
        match phase.direction {
            Direction::Write => file.write_all_at(buf.as_mut(), offset)?,
            Direction::Read => file.read_exact_at(buf.as_mut(), offset)?,
        }
        ops += 1;
        if Instant::now() >= deadline {
            return Ok(ops);
        }
    }
}

fn seed(thread: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) << 16 ^ thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// xorshift64*: random offsets, not cryptography.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A heap buffer aligned for O_DIRECT (a `Vec<u8>` only guarantees byte alignment).
#[derive(Debug)]
struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout =
            Layout::from_size_align(len, ALIGN).expect("block sizes are small multiples of 4 KiB");
        // SAFETY: the layout has a non-zero size (every phase's block is at least 4 KiB).
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = std::ptr::NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised (zeroed) bytes that we own.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_for_direct_io() {
        let mut buf = AlignedBuf::new(4096);
        assert_eq!(buf.as_mut().as_ptr() as usize % ALIGN, 0);
        assert_eq!(buf.as_mut().len(), 4096);
    }

    /// Buffered IO on a small file: the phase logic (offsets, fill tracking), not the disk.
    #[test]
    fn sequential_write_reports_what_it_filled() {
        let file = tempfile::tempfile().unwrap();
        let phase = Phase {
            pattern: Pattern::Sequential,
            direction: Direction::Write,
            block: 4096,
            threads: 2,
        };
        let m = run(&file, phase, 8 * 4096, Duration::from_millis(50)).unwrap();
        assert!(m.ops >= 2, "at least one block per thread");
        assert_eq!(m.bytes, m.ops * 4096);
        assert_eq!(m.filled, (m.ops.min(8)) * 4096);
        assert_eq!(file.metadata().unwrap().len(), m.filled);
        let read = Phase {
            pattern: Pattern::Random,
            direction: Direction::Read,
            ..phase
        };
        let r = run(&file, read, m.filled, Duration::from_millis(20)).unwrap();
        assert!(r.ops > 0);
        assert_eq!(r.filled, 0);
        assert!(run(&file, read, 100, Duration::from_millis(1)).is_err());
    }
}
