//! Where QEMU's SMMUv3 is known to differ from the architecture (`../shared/qemu-smmuv3.md`
//! §12). A probe whose mismatch one of these explains is reported as a QEMU deviation, never
//! as an engine bug; every other mismatch is reported whichever side is wrong.

use super::observed::Observed;
use super::predict::{Expected, FaultKind};

/// A known QEMU deviation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Deviation {
    /// Only the first of concatenated stage-2 root tables is ever indexed (§12.1).
    ConcatenatedS2Root,
    /// AP[1] is ignored: a privileged-only stage-1 leaf translates for a device (§12.10).
    Ap1Ignored,
    /// A stage-2-only permission fault on an IOTLB hit blocks the access but records no
    /// event (§12.4).
    CachedS2PermissionNoEvent,
}

/// One row of the table.
pub struct Row {
    pub deviation: Option<Deviation>,
    pub id: &'static str,
    pub what: &'static str,
    /// How the oracle meets it.
    pub handling: &'static str,
    /// The trace that demonstrates it (under corpus/qemu-deviations/), if the engine can
    /// produce it.
    pub trace: Option<&'static str>,
    /// The QEMU versions it was seen on, and how (a trace replayed by `cargo test`, a
    /// driver test, or the fact sheet's experiments).
    pub seen_on: &'static str,
}

/// Every deviation of the fact sheet, reachable or not, and what the oracle does about it.
pub const TABLE: &[Row] = &[
    Row {
        deviation: Some(Deviation::ConcatenatedS2Root),
        id: "s2-concatenated-root",
        what: "concatenated stage-2 root: QEMU indexes table 0 for every IPA",
        handling: "mismatches at IPAs in root table 1.. are reported as this deviation",
        trace: Some("s2-concatenated-root.trace"),
        seen_on: "10.0.2, 11.1.3 (trace; driver test concatenated_s2_root_bug_reproduces_with_iommu_testdev)",
    },
    Row {
        deviation: Some(Deviation::Ap1Ignored),
        id: "ap1-ignored",
        what: "AP[1] ignored: a privileged-only (prot p) stage-1 page translates for DMA",
        handling: "a probe of a `p` page that ends where an SMMU ignoring AP[1] would take it \
                   (the page, or the next stage's result) is reported as this deviation",
        trace: Some("ap1-ignored.trace"),
        seen_on: "10.0.2, 11.1.3 (trace)",
    },
    Row {
        deviation: Some(Deviation::CachedS2PermissionNoEvent),
        id: "s2-cached-permission-no-event",
        what: "stage-2-only permission fault on an IOTLB hit: blocked, but no event",
        handling:
            "a blocked stage-2 permission probe without an event is reported as this deviation",
        trace: Some("s2-cached-permission.trace"),
        seen_on: "10.0.2, 11.1.3 (trace)",
    },
    Row {
        deviation: None,
        id: "level0-block",
        what: "4K level-0 block descriptors accepted as 512 GiB blocks",
        handling: "unreachable: the engine never writes a level-0 block (the walker oracle checks)",
        trace: None,
        seen_on: "10.0.2, 11.1.3 (driver test level0_blocks_and_oa_bits_above_48_are_still_taken)",
    },
    Row {
        deviation: None,
        id: "oa-51-48-dropped",
        what: "descriptor OA[51:48] silently dropped",
        handling: "unreachable: OAS <= 48 and probes only target PAs in the guest's data window",
        trace: None,
        seen_on: "10.0.2, 11.1.3 (driver test level0_blocks_and_oa_bits_above_48_are_still_taken)",
    },
    Row {
        deviation: None,
        id: "ips-6-7-abort",
        what: "CD.IPS 6 or 7 aborts QEMU; STE.S2AA64 = 0 aborts QEMU",
        handling: "never encoded: the stream builder only emits IPS/S2PS 0..=5 and AArch64 STEs; \
                   AArch32 formats are not sent to QEMU",
        trace: None,
        seen_on: "10.0.2 (fact sheet); not re-checked on 11.1.3: never sent",
    },
    Row {
        deviation: None,
        id: "nested-tt-s2-bit",
        what: "nested stage-2 fault on a stage-1 table fetch reported with S2 = 0",
        handling: "not probed: the harness keeps the stage-1 tables mapped in stage 2",
        trace: None,
        seen_on: "10.0.2 (fact sheet); not re-checked on 11.1.3: not probed",
    },
];

/// What the oracle knows about a probe beyond its expectation.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeFacts {
    /// The stage-1 leaf is privileged-only.
    pub s1_privileged: bool,
    /// The stream is stage-2 only.
    pub s2_only: bool,
    /// The stage-2 input falls in concatenated root table 1 or later.
    pub s2_concatenated_beyond_first: bool,
    /// Where the access would go if no permission were checked (mapped in every stage).
    pub unchecked_pa: Option<u64>,
    /// The prediction of an SMMU that ignores stage-1 AP[1] (for privileged-only leaves).
    pub if_ap1_ignored: Option<Expected>,
}

/// The known deviation that explains `observed` differing from `expected`, if any.
pub fn explain(expected: &Expected, observed: &Observed, facts: &ProbeFacts) -> Option<Deviation> {
    if facts.s2_concatenated_beyond_first {
        return Some(Deviation::ConcatenatedS2Root);
    }
    match (expected, observed) {
        (Expected::Fault(f), observed)
            if f.kind == FaultKind::Permission
                && !f.stage2
                && facts.s1_privileged
                && facts
                    .if_ap1_ignored
                    .is_some_and(|alt| match (alt, observed) {
                        (Expected::Pa(a), Observed::Reached(b)) => a == *b,
                        (Expected::Fault(a), Observed::Fault(b)) => a == *b,
                        _ => false,
                    }) =>
        {
            Some(Deviation::Ap1Ignored)
        }
        (Expected::Fault(f), Observed::Blocked | Observed::Untagged(0))
            if f.kind == FaultKind::Permission && f.stage2 && facts.s2_only =>
        {
            Some(Deviation::CachedS2PermissionNoEvent)
        }
        _ => None,
    }
}

impl Deviation {
    pub fn id(self) -> &'static str {
        TABLE
            .iter()
            .find(|r| r.deviation == Some(self))
            .map_or("?", |r| r.id)
    }
}
