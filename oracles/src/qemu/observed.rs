//! What QEMU did with one probe, decoded from the data the device moved and the events
//! the SMMU recorded.

use std::fmt;

use super::predict::{Access, Fault, FaultKind};

/// Data pages carry self-describing tags: the 8 bytes at `pa` hold `pa ^ TAG`, so a read
/// tells which physical address it reached (zero-filled or foreign memory does not decode).
pub const TAG: u64 = 0x7a67_0000_0000_0000;
/// High bits of the value a write probe stores (the probe number in the low bits).
pub const WRITE_TAG: u64 = 0x5772_0000_0000_0000;

pub fn tag_of(pa: u64) -> u64 {
    pa ^ TAG
}

/// The address a read value's tag names, if it is a tag.
pub fn pa_of_tag(v: u64) -> Option<u64> {
    (v & 0xffff_0000_0000_0000 == TAG).then_some(v ^ TAG)
}

/// The outcome of one DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A read returned the tag of this address (or a write landed at the predicted one).
    Reached(u64),
    /// A read returned bytes that are no tag (unbacked or foreign memory).
    Untagged(u64),
    /// The SMMU recorded a fault (the first event of the probe's stream).
    Fault(Fault),
    /// The SMMU recorded an event the oracle does not predict (type byte).
    OtherEvent(u8),
    /// The access did not reach the predicted address (a write), and no event was recorded.
    Blocked,
    /// A write went through the SMMU without an event but did not land at the predicted
    /// address (iommu-testdev tells this apart from [`Observed::Blocked`]).
    Elsewhere,
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Reached(pa) => write!(f, "pa={pa:#x}"),
            Observed::Untagged(v) => write!(f, "untagged data {v:#x}"),
            Observed::Fault(x) => x.fmt(f),
            Observed::OtherEvent(t) => write!(f, "event type {t:#x}"),
            Observed::Blocked => f.write_str("blocked without an event"),
            Observed::Elsewhere => f.write_str("wrote elsewhere, not at the predicted address"),
        }
    }
}

/// Decodes a probe from the raw DMA result: the first fault event wins; else the data.
///
/// `events` are (type, stage2) of the events attributed to the probe's stream; for a read
/// `value` is what the device read; for a write `landed` says whether the predicted address
/// now holds the written value.
pub fn decode(access: Access, events: &[(u8, bool)], value: u64, landed: Option<u64>) -> Observed {
    if let Some(&(ty, stage2)) = events.first() {
        return match FaultKind::from_event_type(ty) {
            Some(kind) => Observed::Fault(Fault { kind, stage2 }),
            None => Observed::OtherEvent(ty),
        };
    }
    match access {
        Access::Read => pa_of_tag(value).map_or(Observed::Untagged(value), Observed::Reached),
        Access::Write => landed.map_or(Observed::Blocked, Observed::Reached),
    }
}
