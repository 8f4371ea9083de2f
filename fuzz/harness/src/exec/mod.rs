//! The executor: one command at a time on the engine and on the reference model, their
//! outcomes compared, then the oracles run over what the command touched. Trace replay and
//! every fuzzing engine go through here, so a crash from any of them replays the same way.

pub(crate) mod checked;
pub mod ioasid;
pub(crate) mod op;
pub mod oracle;
pub mod totals;

pub use checked::{CheckedDomain, Created};
pub use ioasid::CheckedIoasid;
pub use oracle::Oracle;
pub use totals::OracleTotals;
