//! The Armv7 short-descriptor walk (VMSAv7 short descriptors, ARM-FACTS.md §8), written from
//! the architecture's descriptor layout and never from the engine's `format/v7s.rs`: a
//! 4096-entry first level indexed by IA[31:20] (fault / page table / section /
//! supersection), 256-entry second-level tables indexed by IA[19:12] (fault / large page /
//! small page). Large pages and supersections must be the same descriptor in all 16 slots
//! of their aligned group (otherwise the TLB may return any of them); the walk checks that.
//!
//! - `attrs`: leaf attributes decoded for every leaf kind, and the ones a prot implies;
//! - `walk`: in-order walks of a slot range (the per-op range check, the structure walk);
//! - `structure`: every reachable table against the allocator, counters and model.

mod attrs;
pub mod structure;
#[cfg(test)]
mod tests;
mod walk;

use crate::divergence::Divergence;
use crate::finding::WalkerFinding;
use crate::model::Model;
use crate::walker::range::{nonzero, LeafMatch};
use crate::walker::view::TableView;
pub use attrs::{ShortAttrs, ShortLeafKind};
pub use structure::check_short_structure;

/// A successful short-descriptor walk: output address and the size of the leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortTranslation {
    pub pa: u64,
    pub size: u64,
    /// The leaf descriptor.
    pub desc: u32,
}

/// Walks `iova` from the first-level table at `ttb`; `read(pa)` returns the 8-byte word at
/// an 8-aligned `pa` of the device view. `Ok(None)`: a translation fault; `Err`: a
/// malformed encoding (a repeated group that differs, PA bits above 32, a read outside
/// memory).
pub fn translate_short(
    ttb: u64,
    iova: u64,
    read: impl Fn(u64) -> Option<u64>,
) -> Result<Option<ShortTranslation>, String> {
    let word = |pa: u64| -> Result<u32, String> {
        read(pa & !7)
            .map(|w| (w >> (8 * (pa & 4))) as u32)
            .ok_or_else(|| format!("descriptor read at {pa:#x} outside memory"))
    };
    if iova >> 32 != 0 {
        return Ok(None);
    }
    // The same descriptor in every slot of the 16-aligned group holding `index`.
    let group = |table: u64, index: u64, d: u32| -> Result<(), String> {
        for i in index & !15..(index & !15) + 16 {
            let other = word(table + 4 * i)?;
            if other != d {
                return Err(format!(
                    "slot {i} of the 16-entry group at {table:#x} holds {other:#010x}, slot {index} {d:#010x}"
                ));
            }
        }
        Ok(())
    };
    let i1 = iova >> 20;
    let d1 = word(ttb + 4 * i1)?;
    match d1 & 3 {
        0 => Ok(None),
        1 => {
            let table = (d1 & 0xffff_fc00) as u64;
            let i2 = (iova >> 12) & 0xff;
            let d2 = word(table + 4 * i2)?;
            match d2 & 3 {
                0 => Ok(None),
                1 => {
                    group(table, i2, d2)?;
                    let base = (d2 & 0xffff_0000) as u64;
                    Ok(Some(ShortTranslation {
                        pa: base | (iova & 0xffff),
                        size: 1 << 16,
                        desc: d2,
                    }))
                }
                _ => Ok(Some(ShortTranslation {
                    pa: (d2 & 0xffff_f000) as u64 | (iova & 0xfff),
                    size: 1 << 12,
                    desc: d2,
                })),
            }
        }
        _ if d1 & (1 << 18) != 0 => {
            // Supersection: PA[35:32] in [23:20] and PA[39:36] in [8:5] must be zero for
            // a 32-bit output space.
            if d1 & 0x00f0_01e0 != 0 {
                return Err(format!("supersection {d1:#010x} names PA bits above 31"));
            }
            group(ttb, i1, d1)?;
            Ok(Some(ShortTranslation {
                pa: (d1 & 0xff00_0000) as u64 | (iova & 0x00ff_ffff),
                size: 1 << 24,
                desc: d1,
            }))
        }
        _ => Ok(Some(ShortTranslation {
            pa: (d1 & 0xfff0_0000) as u64 | (iova & 0x000f_ffff),
            size: 1 << 20,
            desc: d1,
        })),
    }
}

/// The tables reachable from `t`'s first level: that level itself, then every level-2
/// table a page-table descriptor (type `01`, address [31:10]) names, in index order, as the
/// walk reaches them. Runs of zero words are skipped a chunk at a time (the frame accounting
/// asks after every op; reading the 2048 words one call each was most of an armv7s
/// execution). A first level outside memory names no table (the accounting then finds
/// every level-2 table unreached).
pub fn short_tables<T: TableView>(t: &T) -> impl Iterator<Item = u64> + '_ {
    let root = t.root();
    let words = t.device_words(root, walk::L1_SLOTS / 2).unwrap_or(&[]);
    let l2 = nonzero(words)
        .flat_map(|(_, w)| [w as u32, (w >> 32) as u32])
        .filter(|d| d & 3 == 1)
        .map(|d| u64::from(d & 0xffff_fc00));
    std::iter::once(root).chain(l2)
}

/// The 8-byte word at the 8-aligned `pa` of `t`'s device view.
fn read_word<T: TableView>(t: &T) -> impl Fn(u64) -> Option<u64> + '_ {
    |pa| t.device_words(pa, 1).map(|w| w[0])
}

/// Every address of `iovas` walked through the device view of `t`'s tables and compared
/// with the model: the same output address and leaf size where the model maps it, a
/// translation fault where it does not.
pub fn check_short<T: TableView>(t: &T, model: &Model, iovas: &[u64]) -> Result<(), Divergence> {
    let read = read_word(t);
    for &iova in iovas {
        let got = translate_short(t.root(), iova, &read)
            .map_err(|why| Divergence::new(WalkerFinding::ShortMalformed { iova, why }))?;
        let want = model
            .leaf_at(iova)
            .map(|(a, pa, size, _)| (pa + (iova - a), size));
        let tables = got.map(|t| (t.pa, t.size));
        if tables != want {
            return Err(Divergence::new(WalkerFinding::ShortLeafDiffers {
                iova,
                tables,
                model: want,
            }));
        }
    }
    Ok(())
}

/// Leaves of the model translated from the first level by a whole-domain check, at their
/// first byte (the structure walk matches every leaf; these take the other path).
const FULL_CHECK_TRANSLATIONS: usize = 8;

/// The per-op check of `[lo, hi)`: every leaf the tables hold there is exactly a model leaf
/// (start, size, output address, the attributes its prot implies) and vice versa, in one
/// in-order pass over the range's slots; `samples` go through [`translate_short`].
pub fn check_short_range<T: TableView>(
    t: &T,
    model: &Model,
    lo: u64,
    hi: u64,
    samples: &[u64],
) -> Result<(), Divergence> {
    check_short(t, model, samples)?;
    let hi = hi.min(1 << 32);
    if lo >= hi {
        return Ok(());
    }
    let mut leaves = LeafMatch::with_expect(model.leaves_overlapping(lo, hi), structure::expected);
    walk::walk_short_range(t, lo, hi, &mut |f| leaves.found(f))?;
    leaves.finish()
}

/// Everything of an armv7s domain: a spread of model leaves translated, then the structure
/// walk ([`check_short_structure`]).
pub fn check_short_domain<T: TableView>(t: &T, model: &Model) -> Result<(), Divergence> {
    let n = model.leaf_count();
    let starts: Vec<u64> = model
        .leaves()
        .step_by((n / FULL_CHECK_TRANSLATIONS).max(1))
        .map(|(a, ..)| a)
        .collect();
    check_short(t, model, &starts)?;
    check_short_structure(t, model).map(|_| ())
}

#[cfg(test)]
mod translate_tests {
    use super::*;

    /// A first level at 0 and a second level at 0x4000, in 8-byte words.
    fn mem(entries: &[(u64, u32)]) -> impl Fn(u64) -> Option<u64> {
        let mut words = vec![0u64; 0x5000 / 8];
        for &(pa, d) in entries {
            words[(pa / 8) as usize] |= (d as u64) << (8 * (pa & 4));
        }
        move |pa| words.get((pa / 8) as usize).copied()
    }

    #[test]
    fn tables_are_the_first_level_and_what_its_table_descriptors_name() {
        use crate::walker::structure_tests::{Fake, BASE};
        let mut f = Fake::new(10, 1, 16);
        let (a, b) = (f.alloc(2, 1), f.alloc(2, 1));
        // Slot 1: table b; slot 2: a section; slot 4095: table a.
        f.set_short(BASE, 1, b as u32 | 1);
        f.set_short(BASE, 2, 0x8010_0002);
        f.set_short(BASE, 4095, a as u32 | 1);
        let t: Vec<u64> = short_tables(&f).collect();
        assert_eq!(t, vec![BASE, b, a]);
    }

    #[test]
    fn walks_every_kind_and_checks_groups() {
        let ss = 0x8100_0002 | 1 << 18;
        let mut e: Vec<(u64, u32)> = (16..32).map(|i| (4 * i, ss)).collect();
        e.push((4 * 3, 0x8030_0002)); // section
        e.push((4 * 5, 0x4001)); // table at 0x4000 for IA 0x500000
        e.extend((0..16).map(|i| (0x4000 + 4 * i, 0x9001_0001))); // large page
        e.push((0x4000 + 4 * 16, 0x9002_3002)); // small page
        let r = mem(&e);
        let t = |iova| {
            translate_short(0, iova, &r)
                .unwrap()
                .map(|t| (t.pa, t.size))
        };
        assert_eq!(t(0x0123_4567), Some((0x8123_4567, 1 << 24)));
        assert_eq!(t(0x0034_5678), Some((0x8034_5678, 1 << 20)));
        assert_eq!(t(0x0050_abcd), Some((0x9001_abcd, 1 << 16)));
        assert_eq!(t(0x0051_0fff), Some((0x9002_3fff, 1 << 12)));
        assert_eq!(t(0x0052_0000), None);
        assert_eq!(t(0x0400_0000), None);
        // A supersection in its first slot only is malformed.
        let r = mem(&[(4 * 16, ss)]);
        assert!(translate_short(0, 0x0100_0000, &r).is_err());
    }
}
