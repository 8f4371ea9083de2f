//! The descriptor layouts the oracle reads, chosen per domain: LPAE (8-byte descriptors,
//! ARM-FACTS §1/§4, decoded with the walker's parameters) or the Armv7 short descriptor
//! (4-byte descriptors, ARM-FACTS §8, decoded here from the architecture's layout, never
//! from the engine's `format/v7s.rs`).
//!
//! Short-descriptor repeated leaves (a 64K large page in 16 level-2 slots, a 16M
//! supersection in 16 level-1 slots) are tracked slot by slot, each slot an entry whose span
//! is the whole page. An implementation may cache such a page in fragments (any part of it,
//! from any of its slots), so only an invalidation of the page's whole IOVA range is sure to
//! evict it: such an entry needs the whole span covered, as a table entry does.

use ptfuzz_engine::config::{DomainConfig, FormatKind};

use super::entry::{classify, ttl_level, EntryKind};
use crate::walker::WalkParams;

/// How one domain's descriptors are laid out.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    Lpae(WalkParams),
    /// Armv7 short descriptor: levels 1 (4096 entries, IA[31:20]) and 2 (256, IA[19:12]).
    Short,
}

/// A valid descriptor as the oracle tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub kind: EntryKind,
    /// log2 of the span one cached entry for it covers.
    pub shift: u32,
    /// Whether an invalidation must cover the whole span (a repeated leaf, see above).
    pub whole: bool,
}

/// The short-descriptor level-1 span (a section) and level-2 span (a small page).
const SHORT_SHIFT: [u32; 3] = [0, 20, 12];

impl Layout {
    pub fn new(cfg: &DomainConfig, p: &WalkParams) -> Layout {
        if cfg.format == FormatKind::Armv7s {
            Layout::Short
        } else {
            Layout::Lpae(*p)
        }
    }

    /// Bytes per descriptor.
    pub fn desc_bytes(&self) -> u64 {
        match self {
            Layout::Lpae(_) => 8,
            Layout::Short => 4,
        }
    }

    pub fn start_level(&self) -> u32 {
        match self {
            Layout::Lpae(p) => p.start_level,
            Layout::Short => 1,
        }
    }

    pub fn last_level(&self) -> u32 {
        match self {
            Layout::Lpae(_) => 3,
            Layout::Short => 2,
        }
    }

    /// log2 of the span of one slot at `level`.
    pub fn shift(&self, level: u32) -> u32 {
        match self {
            Layout::Lpae(p) => p.shift(level),
            Layout::Short => SHORT_SHIFT[level.min(2) as usize],
        }
    }

    /// log2 of the largest span an entry at `level` may have (to find, by first IOVA,
    /// every entry overlapping a range).
    pub fn max_shift(&self, level: u32) -> u32 {
        match self {
            Layout::Lpae(p) => p.shift(level),
            Layout::Short if level <= 1 => 24,
            Layout::Short => 16,
        }
    }

    pub fn entries_at(&self, level: u32) -> u64 {
        match self {
            Layout::Lpae(p) => p.entries_at(level),
            Layout::Short if level <= 1 => 4096,
            Layout::Short => 256,
        }
    }

    /// Bytes of the root table, rounded up to whole `unit`s.
    pub fn root_bytes(&self, unit: u64) -> u64 {
        let bytes = self.entries_at(self.start_level()) * self.desc_bytes();
        bytes.div_ceil(unit) * unit
    }

    /// Bytes of a non-root table (`unit`: the allocator's smallest table).
    pub fn table_bytes(&self, unit: u64) -> u64 {
        match self {
            Layout::Lpae(_) => unit,
            Layout::Short => 1024,
        }
    }

    /// Decodes descriptor `d` read at `level`; `None` when invalid.
    pub fn decode(&self, level: u32, d: u64) -> Option<Decoded> {
        match self {
            Layout::Lpae(p) => classify(p, level, d).map(|kind| Decoded {
                kind,
                shift: p.shift(level),
                whole: false,
            }),
            Layout::Short => short(level, d as u32),
        }
    }

    /// The level a leaf invalidation of `pgsize` targets, `None` for any level (the short
    /// format has no TTL hint).
    pub fn ttl_level(&self, pgsize: u64) -> Option<u32> {
        match self {
            Layout::Lpae(p) => ttl_level(p, pgsize),
            Layout::Short => None,
        }
    }
}

/// A short descriptor (ARM-FACTS §8): bits[1:0] 00 fault everywhere; at level 1, 01 is a
/// page-table pointer (address [31:10]) and 1x a section, or a supersection when bit 18 is
/// set; at level 2, 01 is a large page and 1x a small page.
fn short(level: u32, d: u32) -> Option<Decoded> {
    let leaf = |shift, whole| Decoded {
        kind: EntryKind::Leaf,
        shift,
        whole,
    };
    match (level, d & 3) {
        (_, 0) => None,
        (1, 1) => Some(Decoded {
            kind: EntryKind::Table(u64::from(d & 0xffff_fc00)),
            shift: 20,
            whole: true,
        }),
        (1, _) if d & (1 << 18) != 0 => Some(leaf(24, true)),
        (1, _) => Some(leaf(20, false)),
        (_, 1) => Some(leaf(16, true)),
        _ => Some(leaf(12, false)),
    }
}
