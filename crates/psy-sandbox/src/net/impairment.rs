//! Which link-impairment backend a host uses (netem where the kernel has it, psy's delay line
//! where not), and how a [`LinkShape`] splits into the two directions of a node's link.
//!
//! A shape describes the node's link as a whole: `delay` and `jitter` are what a round trip
//! through it gains, so each direction gets half of them (a 100 ms delay raises a ping's round
//! trip by 100 ms, as `tc qdisc add dev eth0 root netem delay 100ms` on one end would);
//! `loss_percent` and `rate_bps` apply to each direction on its own.

use std::sync::OnceLock;
use std::time::Duration;

use psy_model::scenario::LinkShape;

use super::NetError;

/// Set to `1` to use the delay line even where the kernel has netem (to test both paths).
pub const FORCE_DELAY_LINE_ENV: &str = "PSY_FORCE_DELAY_LINE";

/// How a scenario network delays, drops and paces a node's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpairmentBackend {
    /// The kernel's `netem` qdisc on both ends of the node's veth pair.
    Netem,
    /// psy's userspace delay line between the node's veth and a tap on the bridge.
    DelayLine,
}

impl std::fmt::Display for ImpairmentBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImpairmentBackend::Netem => "netem",
            ImpairmentBackend::DelayLine => "delay line",
        })
    }
}

impl ImpairmentBackend {
    /// The backend this host uses: [`ImpairmentBackend::DelayLine`] if
    /// [`FORCE_DELAY_LINE_ENV`] is `1` or the kernel has no netem (probed once per process).
    pub fn detect() -> ImpairmentBackend {
        static DETECTED: OnceLock<ImpairmentBackend> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let forced = std::env::var(FORCE_DELAY_LINE_ENV).is_ok_and(|v| v == "1");
            let backend = if !forced && kernel_has_netem() {
                ImpairmentBackend::Netem
            } else {
                ImpairmentBackend::DelayLine
            };
            tracing::debug!(?backend, forced, "link impairment backend");
            backend
        })
    }
}

/// Adds a netem qdisc to `lo` of a throw-away network namespace (nothing to clean up).
fn kernel_has_netem() -> bool {
    let probe = std::thread::spawn(|| {
        // SAFETY: unshare affects only this thread, which ends right after; the `tc` it spawns
        // inherits the new namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        std::process::Command::new("tc")
            .args(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    probe.join().unwrap_or(false)
}

/// What one direction of a shaped link does to each frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct OneWay {
    pub(super) delay: Duration,
    /// Each frame's delay varies uniformly within `delay ± jitter`.
    pub(super) jitter: Duration,
    pub(super) loss_percent: f64,
    pub(super) rate_bps: Option<u64>,
}

impl OneWay {
    /// Each direction of `shape` on node `index`, refusing values no link can have.
    pub(super) fn of(index: u32, shape: &LinkShape) -> Result<OneWay, NetError> {
        let loss_percent = shape.loss_percent.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&loss_percent) {
            return Err(NetError::BadShape {
                index,
                why: format!("loss {loss_percent}% is not within 0..=100"),
            });
        }
        if shape.rate_bps == Some(0) {
            return Err(NetError::BadShape {
                index,
                why: "a rate of 0 bit/s would stop all traffic".to_owned(),
            });
        }
        Ok(OneWay {
            delay: shape.delay.unwrap_or_default() / 2,
            jitter: shape.jitter.unwrap_or_default() / 2,
            loss_percent,
            rate_bps: shape.rate_bps,
        })
    }

    /// The `tc` line putting this direction on `dev`'s egress as a netem root qdisc.
    pub(super) fn netem(&self, dev: &str) -> String {
        let mut line = format!("qdisc replace dev {dev} root netem limit 10000");
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            line += &format!(" delay {}us", self.delay.as_micros());
            if !self.jitter.is_zero() {
                line += &format!(" {}us", self.jitter.as_micros());
            }
        }
        if self.loss_percent > 0.0 {
            line += &format!(" loss {}%", self.loss_percent);
        }
        if let Some(rate) = self.rate_bps {
            line += &format!(" rate {rate}bit");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_splits_delay_and_jitter_over_both_directions() {
        let shape = LinkShape {
            delay: Some(Duration::from_millis(100)),
            jitter: Some(Duration::from_millis(10)),
            loss_percent: Some(5.0),
            rate_bps: Some(1_000_000),
        };
        let way = OneWay::of(1, &shape).unwrap();
        assert_eq!(way.delay, Duration::from_millis(50));
        assert_eq!(way.jitter, Duration::from_millis(5));
        assert_eq!(
            way.netem("eth0"),
            "qdisc replace dev eth0 root netem limit 10000 delay 50000us 5000us loss 5% rate 1000000bit"
        );
        let only_loss = LinkShape {
            loss_percent: Some(20.0),
            ..LinkShape::default()
        };
        assert_eq!(
            OneWay::of(1, &only_loss).unwrap().netem("x"),
            "qdisc replace dev x root netem limit 10000 loss 20%"
        );
    }

    #[test]
    fn impossible_shapes_are_refused() {
        for shape in [
            LinkShape {
                loss_percent: Some(101.0),
                ..LinkShape::default()
            },
            LinkShape {
                loss_percent: Some(f64::NAN),
                ..LinkShape::default()
            },
            LinkShape {
                rate_bps: Some(0),
                ..LinkShape::default()
            },
        ] {
            assert!(OneWay::of(3, &shape).is_err(), "{shape:?}");
        }
    }
}
