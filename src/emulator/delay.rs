//! Reply-delay distributions for the emulator (STUB: being implemented).

use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delay {
    Fixed(HumanDuration),
}
impl std::str::FromStr for Delay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse()
            .map(Delay::Fixed)
            .map_err(|e: crate::duration::DurationError| e.to_string())
    }
}
impl std::fmt::Display for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delay::Fixed(d) => write!(f, "{d}"),
        }
    }
}
