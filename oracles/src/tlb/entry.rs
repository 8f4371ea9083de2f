//! What a cache may hold for one descriptor word, from ARM-FACTS §1/§4: bit 0 clear is
//! invalid (never cached); `11` above level 3 is a table descriptor (a walk-cache entry);
//! anything else with bit 0 set is treated as a leaf (a TLB entry). Malformed leaves (a
//! block where none is allowed, L3 `01`) are the walker's business; here they count as
//! leaves, the worst case for a cache.

use crate::walker::descriptor::bits;
use crate::walker::WalkParams;

/// A valid descriptor, as a cache sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Leaf,
    /// Table descriptor pointing at the next-level table at this physical address.
    Table(u64),
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Leaf => "leaf",
            EntryKind::Table(_) => "table entry",
        }
    }
}

/// Classifies descriptor `d` read at `level`; `None` when invalid.
pub fn classify(p: &WalkParams, level: u32, d: u64) -> Option<EntryKind> {
    if d & 1 == 0 {
        None
    } else if level < 3 && d & 0b11 == 0b11 {
        Some(EntryKind::Table(d & bits(47, p.g)))
    } else {
        Some(EntryKind::Leaf)
    }
}

/// The level whose TLB entries a leaf invalidation of `pgsize` targets (its TTL hint, as
/// Linux derives it from the gather's page size, ARM-FACTS §7), or `None` when `pgsize` is no
/// leaf size (TTL 0: any level).
pub fn ttl_level(p: &WalkParams, pgsize: u64) -> Option<u32> {
    (p.start_level..=3).find(|&l| {
        (l == 3 || p.block_allowed(l)) && p.shift(l) < 64 && 1u64 << p.shift(l) == pgsize
    })
}
