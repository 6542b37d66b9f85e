//! When a test's output is shown in the human report (nextest's `--failure-output` model).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// When to print a test's captured stdout and stderr: as soon as it finishes, in the summary at
/// the end of the run, both, or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputDisplay {
    Immediate,
    Final,
    ImmediateFinal,
    Never,
}

impl OutputDisplay {
    /// Every value, in the order the documentation lists them.
    pub const ALL: [OutputDisplay; 4] = [
        OutputDisplay::Immediate,
        OutputDisplay::Final,
        OutputDisplay::ImmediateFinal,
        OutputDisplay::Never,
    ];

    /// Shown when the test finishes.
    pub fn is_immediate(self) -> bool {
        matches!(
            self,
            OutputDisplay::Immediate | OutputDisplay::ImmediateFinal
        )
    }

    /// Shown in the summary at the end of the run.
    pub fn is_final(self) -> bool {
        matches!(self, OutputDisplay::Final | OutputDisplay::ImmediateFinal)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputDisplay::Immediate => "immediate",
            OutputDisplay::Final => "final",
            OutputDisplay::ImmediateFinal => "immediate-final",
            OutputDisplay::Never => "never",
        }
    }
}

impl fmt::Display for OutputDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is none of the [`OutputDisplay`] values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOutputDisplay(pub String);

impl fmt::Display for UnknownOutputDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not one of immediate, final, immediate-final, never",
            self.0
        )
    }
}

impl std::error::Error for UnknownOutputDisplay {}

impl FromStr for OutputDisplay {
    type Err = UnknownOutputDisplay;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputDisplay::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownOutputDisplay(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for d in OutputDisplay::ALL {
            assert_eq!(d.as_str().parse::<OutputDisplay>(), Ok(d));
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        assert_eq!(
            "immedate".parse::<OutputDisplay>().unwrap_err().to_string(),
            "\"immedate\" is not one of immediate, final, immediate-final, never"
        );
        assert!(OutputDisplay::ImmediateFinal.is_immediate());
        assert!(OutputDisplay::ImmediateFinal.is_final());
        assert!(!OutputDisplay::Never.is_immediate() && !OutputDisplay::Never.is_final());
        assert!(!OutputDisplay::Final.is_immediate());
    }
}
