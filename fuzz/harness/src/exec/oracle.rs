//! The one shape every executor gives its checks: after each op that engine and model agreed
//! on, and once after the last op, each returning a typed finding. The page-table target,
//! the preallocation target and the QEMU target stack the same engine-side oracles this way
//! (budget, TLB and break-before-make, frame accounting, counters, walker); QEMU's comparison
//! is one more layer on top.

use ptfuzz_oracles::Divergence;

use crate::outcome::Outcome;
use crate::trace::Command;

/// An oracle (or a stack of them) an executor consults.
pub trait Oracle {
    /// After op `op`: `cmd` ran, and engine and model both returned `out`.
    fn after_op(&mut self, op: usize, cmd: &Command, out: &Outcome) -> Result<(), Divergence>;
    /// Once the input's last op ran: the checks too costly for every op.
    fn at_end(&mut self) -> Result<(), Divergence>;
}
