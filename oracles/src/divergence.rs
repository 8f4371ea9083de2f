//! What every oracle reports when the engine disagrees with it.

use std::fmt;

/// One disagreement: which oracle saw it, and what it saw (addresses and both values in hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub oracle: &'static str,
    pub what: String,
}

impl Divergence {
    pub fn new(oracle: &'static str, what: impl Into<String>) -> Divergence {
        Divergence {
            oracle,
            what: what.into(),
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.oracle, self.what)
    }
}

impl std::error::Error for Divergence {}
