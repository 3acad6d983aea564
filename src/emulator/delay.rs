//! Reply-delay distributions for the emulator (STUB: being implemented).

use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delay {
    Fixed(HumanDuration),
}
