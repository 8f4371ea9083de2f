//! In-order walks of Armv7 short-descriptor tables: every valid entry of a slot range,
//! ascending, decoded and checked once. Each 8-byte word of the device view holds two
//! 4-byte slots (the even one in its low half); runs of zero words are skipped a chunk at a
//! time. A repeated leaf (64K large page, 16M supersection) is reported once, at the first
//! slot of its 16-aligned group, after all 16 slots are found to hold the same descriptor.

use std::ops::Range;

use ptfuzz_engine::alloc::POISON;

use super::attrs::{ShortAttrs, ShortLeafKind};
use crate::divergence::Divergence;
use crate::finding::{StructureFinding, WalkerFinding};
use crate::walker::attrs::LeafAttrs;
use crate::walker::range::{check_child, nonzero, table_words, FoundLeaf};
use crate::walker::view::TableView;

/// Slots of a first-level table (IA[31:20]) and of a second-level one (IA[19:12]).
pub(crate) const L1_SLOTS: u64 = 4096;
pub(crate) const L2_SLOTS: u64 = 256;
/// Slots of a repeated leaf's group.
const GROUP: u64 = 16;
/// Level-1 page-table descriptor: level-2 base [31:10]; [9:2] (domain, NS, PXN, SBZ and
/// implementation-defined bits) are clear in what the engine writes.
const TABLE_ADDR: u32 = 0xffff_fc00;
const TABLE_OTHER: u32 = 0x3fc;

/// log2 of the input span of one slot at `level`.
pub(crate) fn slot_shift(level: u32) -> u32 {
    if level == 1 {
        20
    } else {
        12
    }
}

/// A valid entry of a short-descriptor table, decoded and checked.
pub(crate) enum ShortEntry {
    /// A level-1 page-table descriptor at `pa` (input address `iova`) linking the Live
    /// level-2 table `addr`.
    Table {
        addr: u64,
        pa: u64,
        iova: u64,
    },
    Leaf(FoundLeaf),
}

/// Slot `i` of a table given as 8-byte words.
fn slot(words: &[u64], i: u64) -> u32 {
    (words[(i / 2) as usize] >> (32 * (i & 1))) as u32
}

/// Calls `f` for each valid entry with slot index in `range` of the level-`level` table at
/// `table` (slot 0 at input address `base`), ascending. Checks on the way: no poison word,
/// no fault descriptor with bits set (invalid entries are zero), no level-1 page-table
/// descriptor with bits besides its address and type, a Live level-2 table behind each
/// one, and the same descriptor in all 16 slots of a repeated leaf's group. Returns the
/// valid slots of `range` (a group counts each of its slots there).
pub(crate) fn short_entries<T: TableView>(
    t: &T,
    table: u64,
    level: u32,
    base: u64,
    range: Range<u64>,
    mut f: impl FnMut(&ShortEntry) -> Result<(), Divergence>,
) -> Result<u32, Divergence> {
    let shift = slot_shift(level);
    let slots = if level == 1 { L1_SLOTS } else { L2_SLOTS };
    let words = table_words(t, table, slots / 2)?;
    let (w0, w1) = (range.start / 2, range.end.div_ceil(2));
    let mut valid = 0u32;
    // Slots below this were checked as part of a group.
    let mut skip_until = range.start;
    for (j, w) in nonzero(&words[w0 as usize..w1 as usize]) {
        let wi = w0 + j as u64;
        if w == POISON {
            return Err(StructureFinding::PoisonReachable {
                level,
                pa: table + 8 * wi,
                iova: base + ((2 * wi) << shift),
            }
            .into());
        }
        for i in [2 * wi, 2 * wi + 1] {
            let d = (w >> (32 * (i & 1))) as u32;
            if d == 0 || i < skip_until || i >= range.end {
                continue;
            }
            let pa = table + 4 * i;
            let iova = base + (i << shift);
            let kind = match (level, d & 3) {
                (_, 0) => {
                    return Err(WalkerFinding::ShortMalformed {
                        iova,
                        why: format!(
                            "L{level} fault descriptor at pa {pa:#x} = {d:#010x} has bits set \
                             (invalid entries are zero)"
                        ),
                    }
                    .into())
                }
                (1, 1) => {
                    if d & TABLE_OTHER != 0 {
                        return Err(StructureFinding::TableAttrBits {
                            level,
                            pa,
                            iova,
                            desc: d.into(),
                            bits: (d & TABLE_OTHER).into(),
                        }
                        .into());
                    }
                    let addr = u64::from(d & TABLE_ADDR);
                    check_child(t, 2, addr, pa, iova)?;
                    valid += 1;
                    f(&ShortEntry::Table { addr, pa, iova })?;
                    continue;
                }
                _ => ShortLeafKind::of(level, d).expect("a valid leaf type"),
            };
            let first = if kind.repeated() {
                let g = i & !(GROUP - 1);
                if let Some(k) = (g..g + GROUP).find(|&k| slot(words, k) != d) {
                    return Err(WalkerFinding::ShortMalformed {
                        iova,
                        why: format!(
                            "slot {k} of the 16-slot group at pa {:#x} holds {:#010x}, slot {i} \
                             {d:#010x}",
                            table + 4 * g,
                            slot(words, k)
                        ),
                    }
                    .into());
                }
                skip_until = g + GROUP;
                valid += ((g + GROUP).min(range.end) - g.max(range.start)) as u32;
                g
            } else {
                valid += 1;
                i
            };
            f(&ShortEntry::Leaf(FoundLeaf {
                level,
                iova: base + (first << shift),
                size: 1 << kind.size_log2(),
                oa: u64::from(d & kind.addr_mask()),
                attrs: LeafAttrs::Short(ShortAttrs::decode(kind, d)),
                pa,
                desc: d.into(),
            }))?;
        }
    }
    Ok(valid)
}

/// Calls `leaf` for every valid leaf overlapping `[lo, hi)` (below 2^32), ascending,
/// descending into level-2 tables as it meets them.
pub(crate) fn walk_short_range<T: TableView>(
    t: &T,
    lo: u64,
    hi: u64,
    leaf: &mut impl FnMut(&FoundLeaf) -> Result<(), Divergence>,
) -> Result<(), Divergence> {
    let hi = hi.min(1 << 32);
    if lo >= hi {
        return Ok(());
    }
    let l1 = (lo >> 20)..((hi - 1) >> 20) + 1;
    short_entries(t, t.root(), 1, 0, l1, |e| match e {
        ShortEntry::Table { addr, iova, .. } => {
            let iova = *iova;
            let first = (lo.max(iova) - iova) >> 12;
            let end = ((hi.min(iova + (1 << 20)) - iova - 1) >> 12) + 1;
            short_entries(t, *addr, 2, iova, first..end, |e| match e {
                ShortEntry::Leaf(l) => leaf(l),
                ShortEntry::Table { .. } => unreachable!("level 2 holds no table descriptors"),
            })
            .map(|_| ())
        }
        ShortEntry::Leaf(l) => leaf(l),
    })
    .map(|_| ())
}
