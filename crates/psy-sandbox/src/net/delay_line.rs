//! psy's userspace delay line: impairs a node's link where the kernel has no netem.
//!
//! While a node is shaped, its veth's host end leaves the bridge and a tap (`ps<pid>t<seq>-<i>`)
//! takes its place as the bridge port. One thread per shaped node moves frames between the two:
//! it reads what the node sends from an `AF_PACKET` socket bound to the host end and writes it
//! into the tap (the bridge receives it from the tap), and reads what the bridge delivers to the
//! tap and sends it out of the host end to the node. Each frame waits in a per-direction queue
//! for its delay (± jitter), is dropped with the loss probability, and leaves no sooner than
//! the rate allows after the one before it. There is no loop to guard against: the host end is
//! on no bridge, the socket ignores what it sends itself (`PACKET_IGNORE_OUTGOING`), and the tap
//! is one port like any other.
//!
//! Both ends carry a `virtio_net_hdr` (`PACKET_VNET_HDR`, `IFF_VNET_HDR`), so the veth's
//! offloads pass through unchanged: a 64 KiB TCP segment with its checksum still to compute
//! leaves the node and enters the bridge as such, and the tap (no offloads negotiated) gets
//! checksummed MTU-sized frames from the bridge. The tap is not persistent: closing its fd
//! (the scenario network closing, or psy dying) deletes it. Clearing the shape only stops the
//! thread and swaps the veth back in; the idle tap stays (off the bridge) for the next
//! shape, and so does the packet socket (see `delay_line_io`): closing either waits for an RCU
//! grace period (10-30 ms here). Partitions match both the veth's and the tap's names, so they
//! hold whichever is the node's port.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(super) use super::delay_line_io::LineIo;
use super::impairment::OneWay;
use super::NetError;

/// A GSO frame off a veth is at most 64 KiB plus headers; larger reads mean truncation.
const BUFFER: usize = 128 * 1024;
/// Frames queued per direction before new ones are dropped (netem's `limit`).
const QUEUE_LIMIT: usize = 10_000;

/// A running delay line; dropping it stops the thread.
#[derive(Debug)]
pub(super) struct DelayLine {
    io: Arc<LineIo>,
    way: Arc<Mutex<OneWay>>,
    stop: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl DelayLine {
    /// Starts moving frames between the node's veth and its tap, each direction impaired as
    /// `way` says, once [`DelayLine::open`] lets the veth's frames through.
    pub(super) fn start(veth: &str, io: Arc<LineIo>, way: OneWay) -> Result<DelayLine, NetError> {
        // SAFETY: plain eventfd creation; the fd is owned right below.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if stop < 0 {
            return Err(NetError::Device {
                what: format!("create the stop signal of {veth}'s delay line"),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `stop` was just created and is owned by nobody else.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(stop) });
        let way = Arc::new(Mutex::new(way));
        let (thread_way, thread_stop) = (Arc::clone(&way), Arc::clone(&stop));
        let name = veth.to_owned();
        let thread_io = Arc::clone(&io);
        let thread = std::thread::Builder::new()
            .name(format!("delay-{veth}"))
            .spawn(move || run(&name, &io.node, &io.tap, &thread_stop, &thread_way))
            .map_err(|source| NetError::Device {
                what: format!("start the delay line of {veth}"),
                source,
            })?;
        Ok(DelayLine {
            io: thread_io,
            way,
            stop,
            thread: Some(thread),
        })
    }

    /// Lets the veth's frames reach the thread (call once the tap is the bridge port).
    pub(super) fn open(&self) -> Result<(), NetError> {
        self.io.pass(true)
    }

    /// Changes the impairment of frames arriving from now on.
    pub(super) fn set(&self, way: OneWay) {
        *self.way.lock().unwrap_or_else(PoisonError::into_inner) = way;
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("a delay-line thread panicked");
            }
        }
        // Idle again: what the node sends goes by the bridge and must not queue up here.
        if let Err(e) = self.io.pass(false) {
            tracing::warn!("delay line left open: {e}");
        }
        let mut buf = vec![0u8; BUFFER];
        drain(self.io.node.as_raw_fd(), true, &mut buf, |_| {});
    }
}

/// One frame waiting for its time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Frame {
    due: Instant,
    /// Arrival order, so frames due at once leave in order.
    order: u64,
    data: Vec<u8>,
}

/// One direction: frames read from one fd wait here, then are written to `out`.
#[derive(Debug)]
struct Lane {
    out: RawFd,
    queue: BinaryHeap<Reverse<Frame>>,
    /// When the link is free again after the last frame paced by the rate.
    free_at: Instant,
    arrived: u64,
}

impl Lane {
    fn new(out: RawFd) -> Lane {
        Lane {
            out,
            queue: BinaryHeap::new(),
            free_at: Instant::now(),
            arrived: 0,
        }
    }

    fn admit(&mut self, data: Vec<u8>, way: &OneWay, rng: &mut Rng, now: Instant) {
        self.arrived += 1;
        if self.queue.len() >= QUEUE_LIMIT || rng.percent() < way.loss_percent {
            return;
        }
        let jitter = way.jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
        let mut due = now + Duration::from_secs_f64((way.delay.as_secs_f64() + jitter).max(0.0));
        if let Some(rate) = way.rate_bps {
            due = due.max(self.free_at);
            let bits = (data.len().saturating_sub(VNET_HDR)) as f64 * 8.0;
            self.free_at = due + Duration::from_secs_f64(bits / rate as f64);
        }
        let order = self.arrived;
        self.queue.push(Reverse(Frame { due, order, data }));
    }

    /// Writes every frame that is due; returns when the next one is.
    fn release(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse(frame)) = self.queue.peek() {
            if frame.due > now {
                return Some(frame.due);
            }
            if let Some(Reverse(frame)) = self.queue.pop() {
                // SAFETY: writes from a live buffer of its own length. A full queue or a
                // vanished device drops the frame, as a real link would.
                unsafe { libc::write(self.out, frame.data.as_ptr().cast(), frame.data.len()) };
            }
        }
        None
    }
}

/// `struct virtio_net_hdr` before every frame.
const VNET_HDR: usize = 10;

/// The thread's body: until `stop` is signalled, moves frames node -> tap and tap -> node.
fn run(veth: &str, node: &OwnedFd, tap: &OwnedFd, stop: &OwnedFd, way: &Mutex<OneWay>) {
    let mut to_bridge = Lane::new(tap.as_raw_fd());
    let mut to_node = Lane::new(node.as_raw_fd());
    let mut rng = Rng::seeded();
    let mut buf = vec![0u8; BUFFER];
    tracing::debug!(veth, "delay line started");
    loop {
        let now = Instant::now();
        let next = [to_bridge.release(now), to_node.release(now)]
            .into_iter()
            .flatten()
            .min();
        let mut fds =
            [node.as_raw_fd(), tap.as_raw_fd(), stop.as_raw_fd()].map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        let timeout = next.map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            }
        });
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` and the timeout live across the call; no signal mask is changed.
        let ready = unsafe { libc::ppoll(fds.as_mut_ptr(), 3, timeout_ptr, std::ptr::null()) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::warn!(veth, "delay line stops: poll failed: {e}");
            break;
        }
        if fds[2].revents != 0 {
            break;
        }
        let way = *way.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if fds[0].revents != 0 {
            drain(node.as_raw_fd(), true, &mut buf, |f| {
                to_bridge.admit(f, &way, &mut rng, now)
            });
        }
        if fds[1].revents != 0 {
            drain(tap.as_raw_fd(), false, &mut buf, |f| {
                to_node.admit(f, &way, &mut rng, now)
            });
        }
    }
    tracing::debug!(veth, "delay line stopped");
}

/// Reads frames from `fd` (a packet socket if `socket`, else the tap) until it has none;
/// truncated ones are dropped.
fn drain(fd: RawFd, socket: bool, buf: &mut [u8], mut frame: impl FnMut(Vec<u8>)) {
    loop {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: reads into a live buffer of its own length; MSG_TRUNC makes recv report the
        // real length of a longer frame (a tap's frames never exceed its MTU).
        let n = unsafe {
            if socket {
                libc::recv(fd, ptr, len, libc::MSG_TRUNC)
            } else {
                libc::read(fd, ptr, len)
            }
        };
        if n < 0 {
            // EAGAIN: drained. Anything else (the node's end went down) also ends this round;
            // reading the error cleared it.
            return;
        }
        let n = n as usize;
        if n > VNET_HDR && n <= buf.len() {
            frame(buf[..n].to_vec());
        }
    }
}

/// xorshift64*: enough randomness for loss and jitter, without a dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((nanos ^ u64::from(std::process::id()) << 32) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn percent(&mut self) -> f64 {
        self.unit() * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        vec![0; VNET_HDR + len]
    }

    #[test]
    fn frames_wait_their_delay_within_the_jitter() {
        let mut lane = Lane::new(-1);
        let mut rng = Rng::seeded();
        let way = OneWay {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
            ..OneWay::default()
        };
        let now = Instant::now();
        for _ in 0..1000 {
            lane.admit(frame(100), &way, &mut rng, now);
        }
        let dues: Vec<Duration> = lane.queue.iter().map(|Reverse(f)| f.due - now).collect();
        assert_eq!(dues.len(), 1000);
        assert!(
            dues.iter().all(|d| (45..=55).contains(&d.as_millis())),
            "{dues:?}"
        );
        assert!(dues.iter().any(|d| d.as_millis() < 48) && dues.iter().any(|d| d.as_millis() > 52));
    }

    #[test]
    fn loss_drops_about_its_share_and_rate_spaces_frames() {
        let mut rng = Rng::seeded();
        let mut lane = Lane::new(-1);
        let lossy = OneWay {
            loss_percent: 20.0,
            ..OneWay::default()
        };
        let now = Instant::now();
        for _ in 0..5000 {
            lane.admit(frame(100), &lossy, &mut rng, now);
        }
        assert!(
            (3700..=4300).contains(&lane.queue.len()),
            "{}",
            lane.queue.len()
        );

        let mut paced = Lane::new(-1);
        let slow = OneWay {
            rate_bps: Some(8_000_000), // 1000-byte frames: one per millisecond
            ..OneWay::default()
        };
        let now = Instant::now();
        for _ in 0..10 {
            paced.admit(frame(1000), &slow, &mut rng, now);
        }
        let last = paced.queue.iter().map(|Reverse(f)| f.due).max().unwrap();
        assert_eq!((last - now).as_micros(), 9000);
    }
}
