//! What every oracle reports when the engine disagrees with it: a typed finding (which
//! oracle, which kind, the addresses and both values) and the op it happened after.

use std::fmt;

use crate::finding::{Finding, OracleId};

/// One disagreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The op after which it was seen, when the executor or the oracle knows it.
    pub op: Option<usize>,
    pub finding: Finding,
}

impl Divergence {
    pub fn new(finding: impl Into<Finding>) -> Divergence {
        Divergence {
            op: None,
            finding: finding.into(),
        }
    }

    /// The same, seen after op `op` (unless an op is known already).
    pub fn at(mut self, op: usize) -> Divergence {
        if self.op().is_none() {
            self.op = Some(op);
        }
        self
    }

    /// The same with a TLB finding's event numbers counted from `base` (other findings
    /// carry none).
    pub fn rebased(mut self, base: u64) -> Divergence {
        if let Finding::Tlb(t) = self.finding {
            self.finding = Finding::Tlb(t.rebased(base));
        }
        self
    }

    /// The op index: the finding's own, or the one the executor gave.
    pub fn op(&self) -> Option<usize> {
        self.finding.op().or(self.op)
    }

    pub fn oracle(&self) -> OracleId {
        self.finding.oracle()
    }

    /// The stable kind name, `oracle/what`.
    pub fn kind(&self) -> &'static str {
        self.finding.kind()
    }

    /// The finding's message, without the oracle's name.
    pub fn what(&self) -> String {
        self.finding.to_string()
    }
}

impl<T: Into<Finding>> From<T> for Divergence {
    fn from(f: T) -> Divergence {
        Divergence::new(f)
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.oracle(), self.finding)?;
        match (self.finding.op(), self.op) {
            (None, Some(op)) => write!(f, " (after op {op})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Divergence {}
