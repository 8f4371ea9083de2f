//! The whole-structure walk of an Armv7 short-descriptor domain: every table reachable from
//! the first level once, against the allocator's metadata, its counters and the model (the
//! short-descriptor counterpart of `walker::structure`, which decodes LPAE).

use ptfuzz_engine::prot::Prot;

use super::attrs::ShortAttrs;
use super::walk::{short_entries, ShortEntry, L1_SLOTS, L2_SLOTS};
use crate::divergence::Divergence;
use crate::finding::{StructureFinding as S, WalkerFinding};
use crate::model::Model;
use crate::walker::attrs::LeafAttrs;
use crate::walker::range::LeafMatch;
use crate::walker::structure::{check_allocator, check_root, give_seen, take_seen, StructureStats};
use crate::walker::view::TableView;

/// The allocation unit: a level-2 table (256 slots of 4 bytes).
const UNIT: u64 = 1 << 10;
/// The first level: 4096 slots of 4 bytes, aligned to its size.
const ROOT_BYTES: u64 = 16 << 10;

/// The attributes SEMANTICS.md gives a leaf mapped with `prot`.
pub(crate) fn expected(prot: Prot) -> LeafAttrs {
    LeafAttrs::Short(ShortAttrs::expected(prot))
}

/// Walks the first level and every level-2 table it links (device view), once each, and
/// checks:
/// - the first level is a Live level-1 table of 16 units (the other 15 Tail), aligned to
///   16 KiB, ending at or below 2^32;
/// - every entry as `walk::short_entries` does (no poison, nothing malformed, page-table
///   descriptors with no bits besides address and type, pointing to a Live level-2 table,
///   repeated leaves identical over their group), and no table is reached twice;
/// - each table's metadata `live` count equals its valid slots (a repeated leaf: 16);
/// - the level-2 tables linked are exactly the model's tables (by the 1M span each
///   translates): none left linked where the semantics free it, none missing;
/// - every leaf is exactly a model leaf (start, size, output address, attributes), and
///   their numbers agree;
/// - the allocator as for LPAE (`structure::check_allocator`, over 1 KiB units): counters
///   add up, no Live table unreached, the deferred list as counted, no table in use in a free
///   host page or overlapping another, free units still poisoned.
pub fn check_short_structure<T: TableView>(
    t: &T,
    model: &Model,
) -> Result<StructureStats, Divergence> {
    let root = t.root();
    check_root(t, 1, ROOT_BYTES, UNIT, 1 << 32)?;

    let mut seen = take_seen();
    seen.insert(root);
    let mut stats = StructureStats {
        tables: 1,
        leaves: 0,
    };
    let mut leaves = LeafMatch::with_expect(model.leaves(), expected);
    // The model's level-2 tables by base, ascending as the walk meets them.
    let mut model_tables = model.tables().map(|(_, base)| base).peekable();
    let walked = short_entries(t, root, 1, 0, 0..L1_SLOTS, |e| match *e {
        ShortEntry::Table { addr, pa, iova } => {
            if !seen.insert(addr) {
                return Err(S::ReachableTwice {
                    table: addr,
                    desc_pa: pa,
                    iova,
                }
                .into());
            }
            match model_tables.peek() {
                Some(&b) if b == iova => {
                    model_tables.next();
                }
                Some(&b) if b < iova => {
                    return Err(S::ModelTableMissing { level: 2, iova: b }.into())
                }
                _ => {
                    return Err(S::TableNotInModel {
                        level: 2,
                        table: addr,
                        iova,
                    }
                    .into())
                }
            }
            stats.tables += 1;
            let valid = short_entries(t, addr, 2, iova, 0..L2_SLOTS, |e| match e {
                ShortEntry::Leaf(l) => {
                    stats.leaves += 1;
                    leaves.found(l)
                }
                ShortEntry::Table { .. } => unreachable!("level 2 holds no table descriptors"),
            })?;
            live_matches(t, 2, addr, iova, valid)
        }
        ShortEntry::Leaf(ref l) => {
            stats.leaves += 1;
            leaves.found(l)
        }
    });
    let checked = walked
        .and_then(|valid| live_matches(t, 1, root, 0, valid))
        .and_then(|()| match model_tables.next() {
            Some(b) => Err(S::ModelTableMissing { level: 2, iova: b }.into()),
            None => Ok(()),
        })
        .and_then(|()| {
            let model_leaves = model.leaf_count() as u64;
            if stats.leaves != model_leaves {
                return Err(WalkerFinding::LeafCount {
                    tables: stats.leaves,
                    model: model_leaves,
                }
                .into());
            }
            leaves.finish()
        })
        .and_then(|()| check_allocator(t, UNIT, &seen));
    give_seen(seen);
    checked.map(|()| stats)
}

/// The metadata `live` count of the level-`level` table at `table` is its `valid` slots.
fn live_matches<T: TableView>(
    t: &T,
    level: u32,
    table: u64,
    iova: u64,
    valid: u32,
) -> Result<(), Divergence> {
    let meta_live = t.frame(table).map(|m| m.live);
    if meta_live != Some(valid) {
        return Err(S::LiveEntries {
            level,
            table,
            iova,
            valid,
            meta_live,
        }
        .into());
    }
    Ok(())
}
