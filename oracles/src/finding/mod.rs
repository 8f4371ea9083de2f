//! Typed findings: what each oracle reports when the engine disagrees with it. Every oracle
//! has its own enum; every variant carries the addresses and both values (engine and oracle
//! side) as fields and has a stable kind name (`walker/leaf-output-address`), so a crash
//! signature is built from the kind, never from the first words of a message.

#[macro_use]
mod macros;
mod accounting;
mod budget;
mod executor;
mod qemu;
mod structure;
mod tlb;
mod walker;

use std::fmt;

pub use accounting::AccountingFinding;
pub use budget::BudgetFinding;
pub use executor::{
    AllocGuardFinding, AllocHooksFinding, Counter, CounterFinding, IoasidConsistencyFinding,
    IoasidStateFinding,
};
pub use qemu::QemuFinding;
pub use structure::StructureFinding;
pub use tlb::TlbFinding;
pub use walker::{LeafSeen, ModelLeaf, WalkerFinding};

/// The oracles, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OracleId {
    /// Translations of the device view against the model's leaves.
    Walker,
    /// The shape of the tables against the allocator's metadata and counters.
    Structure,
    /// The TLB / walk-cache model and break-before-make.
    Tlb,
    /// Every frame in exactly one state (issue 13).
    Accounting,
    /// The allocator's counters against the model's prediction.
    Counters,
    /// The preallocation-budget checker.
    Budget,
    /// Heap allocations inside a no-allocate section.
    AllocGuard,
    /// Custom allocator hooks against the counters.
    AllocHooks,
    /// IOASID engine state against the IOASID model.
    IoasidState,
    /// The IOASID engine's own invariants.
    IoasidConsistency,
    /// QEMU's emulated SMMUv3 against the model.
    Qemu,
}

impl OracleId {
    pub const ALL: [OracleId; 11] = [
        OracleId::Walker,
        OracleId::Structure,
        OracleId::Tlb,
        OracleId::Accounting,
        OracleId::Counters,
        OracleId::Budget,
        OracleId::AllocGuard,
        OracleId::AllocHooks,
        OracleId::IoasidState,
        OracleId::IoasidConsistency,
        OracleId::Qemu,
    ];

    /// The stable name: the first part of every kind.
    pub fn name(self) -> &'static str {
        match self {
            OracleId::Walker => "walker",
            OracleId::Structure => "structure",
            OracleId::Tlb => "tlb",
            OracleId::Accounting => "accounting",
            OracleId::Counters => "counters",
            OracleId::Budget => "budget",
            OracleId::AllocGuard => "alloc-guard",
            OracleId::AllocHooks => "alloc-hooks",
            OracleId::IoasidState => "ioasid-state",
            OracleId::IoasidConsistency => "ioasid-consistency",
            OracleId::Qemu => "qemu",
        }
    }

    /// Every kind this oracle can report.
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            OracleId::Walker => WalkerFinding::KINDS,
            OracleId::Structure => StructureFinding::KINDS,
            OracleId::Tlb => TlbFinding::KINDS,
            OracleId::Accounting => AccountingFinding::KINDS,
            OracleId::Counters => CounterFinding::KINDS,
            OracleId::Budget => BudgetFinding::KINDS,
            OracleId::AllocGuard => AllocGuardFinding::KINDS,
            OracleId::AllocHooks => AllocHooksFinding::KINDS,
            OracleId::IoasidState => IoasidStateFinding::KINDS,
            OracleId::IoasidConsistency => IoasidConsistencyFinding::KINDS,
            OracleId::Qemu => QemuFinding::KINDS,
        }
    }
}

impl fmt::Display for OracleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding of any oracle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error(transparent)]
    Walker(#[from] WalkerFinding),
    #[error(transparent)]
    Structure(#[from] StructureFinding),
    #[error(transparent)]
    Tlb(#[from] TlbFinding),
    #[error(transparent)]
    Accounting(#[from] AccountingFinding),
    #[error(transparent)]
    Counters(#[from] CounterFinding),
    #[error(transparent)]
    Budget(#[from] BudgetFinding),
    #[error(transparent)]
    AllocGuard(#[from] AllocGuardFinding),
    #[error(transparent)]
    AllocHooks(#[from] AllocHooksFinding),
    #[error(transparent)]
    IoasidState(#[from] IoasidStateFinding),
    #[error(transparent)]
    IoasidConsistency(#[from] IoasidConsistencyFinding),
    #[error(transparent)]
    Qemu(#[from] QemuFinding),
}

impl Finding {
    pub fn oracle(&self) -> OracleId {
        match self {
            Finding::Walker(_) => OracleId::Walker,
            Finding::Structure(_) => OracleId::Structure,
            Finding::Tlb(_) => OracleId::Tlb,
            Finding::Accounting(_) => OracleId::Accounting,
            Finding::Counters(_) => OracleId::Counters,
            Finding::Budget(_) => OracleId::Budget,
            Finding::AllocGuard(_) => OracleId::AllocGuard,
            Finding::AllocHooks(_) => OracleId::AllocHooks,
            Finding::IoasidState(_) => OracleId::IoasidState,
            Finding::IoasidConsistency(_) => OracleId::IoasidConsistency,
            Finding::Qemu(_) => OracleId::Qemu,
        }
    }

    /// The stable name of this finding's variant, `oracle/what`.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Walker(f) => f.kind(),
            Finding::Structure(f) => f.kind(),
            Finding::Tlb(f) => f.kind(),
            Finding::Accounting(f) => f.kind(),
            Finding::Counters(f) => f.kind(),
            Finding::Budget(f) => f.kind(),
            Finding::AllocGuard(f) => f.kind(),
            Finding::AllocHooks(f) => f.kind(),
            Finding::IoasidState(f) => f.kind(),
            Finding::IoasidConsistency(f) => f.kind(),
            Finding::Qemu(f) => f.kind(),
        }
    }

    /// The op the finding names itself, if its oracle knows it.
    pub fn op(&self) -> Option<usize> {
        match self {
            Finding::Tlb(f) => Some(f.op()),
            Finding::Qemu(f) => Some(f.op()),
            _ => None,
        }
    }
}
