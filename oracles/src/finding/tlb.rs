//! The TLB / walk-cache oracle's findings: break-before-make, missing invalidations, tables
//! freed or reused too early. Each names the op it happened in.

finding_enum! {
    /// What the worst-case cache saw go wrong (descriptor values old and new, sequence numbers
    /// of the events in the engine's logs).
    pub enum TlbFinding: "tlb" {
        /// A table linked from a second entry while the first still reaches it.
        TableLinkedTwice { op: usize, table: u64, desc: u64, slot: u64, iova: u64, level: u32, seq: u64 } = "table-linked-twice" (
            "table {table:#x} linked a second time in op {op}: descriptor {desc:#x} at {slot:#x} \
             (IOVA {iova:#x}, level {level}, seq {seq}) while another entry already reaches it"
        ),
        /// A valid entry written over an invalid one that no invalidation covered since.
        BbmNotInvalidated { op: usize, iova: u64, level: u32, old: u64, new: u64, slot: u64, broken_at: u64, seq: u64 } = "bbm-not-invalidated" (
            "break-before-make violated at IOVA {iova:#x} (level {level}) in op {op}: old {old:#x} \
             new {new:#x} (descriptor at {slot:#x}): the entry was made invalid at seq {broken_at} \
             and no invalidation covered it before this write (seq {seq})"
        ),
        /// A valid entry replaced by another valid entry in place.
        BbmInPlace { op: usize, iova: u64, level: u32, old: u64, new: u64, slot: u64, seq: u64 } = "bbm-replaced-in-place" (
            "break-before-make violated at IOVA {iova:#x} (level {level}) in op {op}: old {old:#x} \
             new {new:#x} (descriptor at {slot:#x}): replaced in place at seq {seq} without being \
             made invalid first"
        ),
        ReusedBeforeGrace { op: usize, table: u64, seq: u64, frame: u64, frames: u8, deferred_at: u64 } = "reused-before-grace" (
            "table {table:#x} reused before the grace period in op {op}: allocated again at seq \
             {seq} (frame {frame:#x}, {frames} frame(s)) after it was deferred at seq {deferred_at} \
             and not released"
        ),
        RootDeferred { op: usize, root: u64, seq: u64 } = "root-deferred" (
            "the root table {root:#x} deferred at seq {seq} in op {op} while the domain uses it"
        ),
        /// A table freed while its parent entry is still valid.
        FreedWhileLinked { op: usize, table: u64, span: (u64, u64), level: u32, seq: u64 } = "freed-while-linked" (
            "table {table:#x} (IOVA span [{:#x}, {:#x}], level {level}) freed before the walk \
             invalidation that covers it, op {op}: deferred at seq {seq} while its parent entry \
             is still valid", .span.0, .span.1
        ),
        /// A table freed after its unlink but before any walk invalidation covering it.
        FreedBeforeWalkInvalidation { op: usize, table: u64, span: (u64, u64), level: u32, unlinked_at: u64, seq: u64 } = "freed-before-walk-invalidation" (
            "table {table:#x} (IOVA span [{:#x}, {:#x}], level {level}) freed before the walk \
             invalidation that covers it, op {op}: unlinked at seq {unlinked_at}, deferred at seq \
             {seq}, no Walk or All covering its parent entry in between", .span.0, .span.1
        ),
        /// An entry cleared in the op and never invalidated by its end.
        StaleTranslation {
            op: usize, iova: u64, entry: &'static str, level: u32, old: u64, slot: u64, last: u64,
            seq: u64,
            /// The table entry above whose clearing made this one unreachable, if any.
            under: Option<u64>,
            /// Other entries left stale in the same op.
            more: usize,
        } = "stale-translation" (
            "stale translation at IOVA {iova:#x} after op {op}: {entry} at level {level} \
             (descriptor {old:#x} at {slot:#x}, IOVA span [{iova:#x}, {last:#x}]) was cleared \
             without an invalidation covering it{}{}",
            match .under {
                Some(top) => format!(" (it was not written itself: the table entry at {top:#x} above it was cleared at seq {seq})"),
                None => format!(" (at seq {seq})"),
            },
            if *.more > 0 { format!("; {more} more stale entries") } else { String::new() }
        ),
    }
}

impl TlbFinding {
    /// The op the finding happened in.
    pub fn op(&self) -> usize {
        match *self {
            TlbFinding::TableLinkedTwice { op, .. }
            | TlbFinding::BbmNotInvalidated { op, .. }
            | TlbFinding::BbmInPlace { op, .. }
            | TlbFinding::ReusedBeforeGrace { op, .. }
            | TlbFinding::RootDeferred { op, .. }
            | TlbFinding::FreedWhileLinked { op, .. }
            | TlbFinding::FreedBeforeWalkInvalidation { op, .. }
            | TlbFinding::StaleTranslation { op, .. } => op,
        }
    }
}

impl TlbFinding {
    /// The same with every event number counted from `base`.
    pub fn rebased(mut self, base: u64) -> TlbFinding {
        let at = |n: &mut u64| *n = n.saturating_sub(base);
        match &mut self {
            TlbFinding::TableLinkedTwice { seq, .. }
            | TlbFinding::BbmInPlace { seq, .. }
            | TlbFinding::RootDeferred { seq, .. }
            | TlbFinding::FreedWhileLinked { seq, .. }
            | TlbFinding::StaleTranslation { seq, .. } => at(seq),
            TlbFinding::BbmNotInvalidated { broken_at, seq, .. } => {
                at(broken_at);
                at(seq);
            }
            TlbFinding::ReusedBeforeGrace {
                seq, deferred_at, ..
            } => {
                at(seq);
                at(deferred_at);
            }
            TlbFinding::FreedBeforeWalkInvalidation {
                unlinked_at, seq, ..
            } => {
                at(unlinked_at);
                at(seq);
            }
        }
        self
    }
}
