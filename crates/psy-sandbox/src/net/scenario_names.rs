//! Names of a scenario network's interfaces and nftables table, and reading the owning psy's
//! pid back out of them (for `gc_stale`).
//!
//! Interface names are capped at 15 bytes by the kernel, so they are built from the owner's pid
//! in hex (at most 6 digits: the kernel's pid limit is 2^22), a kind letter that is not a hex
//! digit (`n` bridge, `v` host end of a veth, `t` delay-line tap), the scenario's sequence
//! number modulo [`SEQ_MODULUS`] in hex and the port's index in hex:
//! `ps<pid>n<seq>`, `ps<pid>v<seq>-<index>`, `ps<pid>t<seq>-<index>`: at most
//! 2 + 6 + 1 + 3 + 1 + 2 = 15 bytes. Run networks' `psy<pid>` never parse as these (`y` is no
//! hex digit). The table has no length limit: `psy_scenario_<pid>_<seq>`, both decimal.

/// Sequence numbers wrap here (three hex digits); only scenarios alive at once must differ.
pub(super) const SEQ_MODULUS: u32 = 0x1000;

/// Largest port index (two hex digits in interface names).
pub const MAX_SCENARIO_INDEX: u32 = 0xff;

/// The kernel's largest pid is below 2^22: six hex digits.
const MAX_PID: u32 = (1 << 22) - 1;

const TABLE_PREFIX: &str = "psy_scenario_";

/// The names of one scenario network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScenarioNames {
    pid: u32,
    seq: u32,
}

impl ScenarioNames {
    /// `None` if `owner_pid` cannot be a pid.
    pub(super) fn new(owner_pid: u32, seq: u32) -> Option<ScenarioNames> {
        (owner_pid > 0 && owner_pid <= MAX_PID).then_some(ScenarioNames {
            pid: owner_pid,
            seq,
        })
    }

    fn link(&self, kind: char) -> String {
        format!("ps{:x}{kind}{:x}", self.pid, self.seq % SEQ_MODULUS)
    }

    pub(super) fn bridge(&self) -> String {
        self.link('n')
    }

    /// The host end of port `index`'s veth pair.
    pub(super) fn veth(&self, index: u32) -> String {
        format!("{}-{index:x}", self.link('v'))
    }

    /// The tap standing in for port `index` on the bridge while its delay line runs.
    pub(super) fn tap(&self, index: u32) -> String {
        format!("{}-{index:x}", self.link('t'))
    }

    /// The nftables `bridge` family table holding the partitions.
    pub(super) fn table(&self) -> String {
        format!("{TABLE_PREFIX}{}_{}", self.pid, self.seq)
    }
}

/// The owner's pid of a scenario interface name, `None` for any other name.
pub(super) fn link_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ps")?;
    let digits = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
    let (pid, rest) = rest.split_at(digits);
    let mut kind = rest.chars();
    let tail_ok = match kind.next()? {
        'n' => is_hex(kind.as_str()),
        'v' | 't' => kind
            .as_str()
            .split_once('-')
            .is_some_and(|(seq, index)| is_hex(seq) && is_hex(index)),
        _ => false,
    };
    if !tail_ok || digits == 0 || digits > 6 {
        return None;
    }
    u32::from_str_radix(pid, 16).ok()
}

/// The owner's pid of a scenario table name, `None` for any other name.
pub(super) fn table_owner(name: &str) -> Option<u32> {
    let (pid, seq) = name.strip_prefix(TABLE_PREFIX)?.split_once('_')?;
    seq.parse::<u32>().ok()?;
    pid.parse().ok()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_names_fit_the_kernel_and_parse_back() {
        let names = ScenarioNames::new(MAX_PID, SEQ_MODULUS - 1).unwrap();
        for name in [
            names.bridge(),
            names.veth(MAX_SCENARIO_INDEX),
            names.tap(MAX_SCENARIO_INDEX),
        ] {
            assert!(name.len() <= 15, "{name} is longer than 15 bytes");
            assert_eq!(link_owner(&name), Some(MAX_PID), "{name}");
        }
        assert_eq!(table_owner(&names.table()), Some(MAX_PID));
    }

    #[test]
    fn sequence_numbers_wrap_in_links_but_not_in_the_table() {
        let a = ScenarioNames::new(0x1234, 5).unwrap();
        let b = ScenarioNames::new(0x1234, 5 + SEQ_MODULUS).unwrap();
        assert_eq!(a.bridge(), "ps1234n5");
        assert_eq!(a.veth(10), "ps1234v5-a");
        assert_eq!(a.tap(0), "ps1234t5-0");
        assert_eq!(a.bridge(), b.bridge());
        assert_ne!(a.table(), b.table());
        assert_eq!(a.table(), "psy_scenario_4660_5");
    }

    #[test]
    fn other_names_are_not_taken_for_scenario_ones() {
        for name in [
            "psy1a2b",
            "pv1a2b-3",
            "eth0",
            "ps",
            "psn1",
            "ps12n",
            "ps12v3",
            "ps12v3-",
            "ps12x3-1",
            "ps1234567n1",
            "ps12t3-1g",
            "docker0",
        ] {
            assert_eq!(link_owner(name), None, "{name}");
        }
        for name in [
            "psy_scenario_",
            "psy_scenario_12",
            "psy_scenario_x_1",
            "filter",
        ] {
            assert_eq!(table_owner(name), None, "{name}");
        }
        assert!(ScenarioNames::new(0, 1).is_none());
        assert!(ScenarioNames::new(MAX_PID + 1, 1).is_none());
    }
}
