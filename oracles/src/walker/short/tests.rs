//! Short-descriptor attributes, range walk and structure walk against hand-made tables. The
//! descriptors are written here from ARM-FACTS §8 bit by bit, not by the decoder under test.

use ptfuzz_engine::alloc::POISON;
use ptfuzz_engine::config::{DomainConfig, FormatKind, Granule};
use ptfuzz_engine::prot::Prot;

use super::attrs::{ShortAttrs, ShortLeafKind};
use super::{check_short_range, check_short_structure};
use crate::divergence::Divergence;
use crate::model::Model;
use crate::walker::structure_tests::{Fake, BASE};

/// Section (level 1, type `10`) for prot `rw`: XN (4), AP[0] (10), AP[1] (11), TEX 001
/// (12), S (16), nG (17).
const SECTION_RW: u32 = 0b10 | 1 << 4 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 16 | 1 << 17;
/// Large page (level 2, type `01`) for prot `rw`: AP[0] (4), AP[1] (5), S (10), nG (11),
/// TEX 001 (12), XN (15).
const LARGE_RW: u32 = 0b01 | 1 << 4 | 1 << 5 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 15;
/// Small page (level 2, type `1x`) for prot `rw`: XN (0), AP[0] (4), AP[1] (5), TEX 001
/// (6), S (10), nG (11).
const SMALL_RW: u32 = 0b10 | 1 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 10 | 1 << 11;
const SUPERSECTION: u32 = 1 << 18;

fn kind(d: Result<impl Sized, Divergence>) -> &'static str {
    d.err().map_or("ok", |d| d.kind())
}

#[test]
fn every_kind_decodes_to_what_rw_implies() {
    let want = ShortAttrs::expected(Prot::RW);
    for (k, d) in [
        (ShortLeafKind::Section, SECTION_RW),
        (ShortLeafKind::Supersection, SECTION_RW | SUPERSECTION),
        (ShortLeafKind::Large, LARGE_RW),
        (ShortLeafKind::Small, SMALL_RW),
    ] {
        assert_eq!(
            ShortLeafKind::of(if k.size_log2() > 16 { 1 } else { 2 }, d),
            Some(k)
        );
        assert_eq!(ShortAttrs::decode(k, d), want, "{k:?}");
    }
}

/// Every bit outside the address and the type is fixed by the semantics: flipping any one
/// of them gives other attributes.
#[test]
fn every_attribute_bit_is_checked() {
    let want = ShortAttrs::expected(Prot::RW);
    let cases = [
        // Section: PXN (0), [17:2] and NS (19); 18 would make it a supersection.
        (ShortLeafKind::Section, SECTION_RW, (2..18).chain([0, 19])),
        (
            ShortLeafKind::Supersection,
            SECTION_RW | SUPERSECTION,
            (2..18).chain([0, 19]),
        ),
        // Large page: [15:2]; [8:6] are SBZ.
        (ShortLeafKind::Large, LARGE_RW, (2..16).chain([2, 2])),
        // Small page: XN (0) and [11:2].
        (ShortLeafKind::Small, SMALL_RW, (2..12).chain([0, 0])),
    ];
    for (k, d, bits) in cases {
        for b in bits {
            assert_ne!(ShortAttrs::decode(k, d ^ 1 << b), want, "{k:?} bit {b}");
        }
    }
    // Supersection extended-PA fields [23:20] are no attribute the semantics allow either.
    let ss = SECTION_RW | SUPERSECTION | 1 << 20;
    assert_ne!(ShortAttrs::decode(ShortLeafKind::Supersection, ss), want);
}

#[test]
fn prot_bits_move_the_fields_linux_names() {
    let e = ShortAttrs::expected;
    // Read-only: AP[2]; privileged: no AP[1]; executable: no XN.
    assert!(e(Prot::READ).ro && !e(Prot::RW).ro);
    assert!(!e(Prot::RW | Prot::PRIV).unpriv && e(Prot::RW).unpriv);
    assert!(!e(Prot::RW | Prot::EXEC).xn);
    // Memory type: TEX 001 and neither B nor C (normal non-cacheable); with `c` B and C;
    // `m` (also with `c`) TEX 000 and B (device).
    let t = |p| (e(p).tex, e(p).c, e(p).b);
    assert_eq!(t(Prot::RW), (1, false, false));
    assert_eq!(t(Prot::RW | Prot::CACHE), (1, true, true));
    assert_eq!(t(Prot::RW | Prot::MMIO), (0, false, true));
    assert_eq!(t(Prot::RW | Prot::MMIO | Prot::CACHE), (0, false, true));
    // A small page for `r` with `c` and `x`, bit by bit.
    let d = 0b10 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 9 | 1 << 10 | 1 << 11;
    assert_eq!(
        ShortAttrs::decode(ShortLeafKind::Small, d),
        e(Prot::READ | Prot::CACHE | Prot::EXEC)
    );
}

/// A small page at 0x0010_1000, a large page at 0x0011_0000 (level-2 table for 1M at
/// 0x0010_0000), a section at 0x0030_0000, a supersection at 0x0100_0000; all `rw`.
/// Returns (fake, model, level-2 table).
fn baseline() -> (Fake, Model, u64) {
    let cfg = DomainConfig::new(FormatKind::Armv7s, Granule::G4K, 32, 32);
    let mut model = Model::new(&cfg).unwrap();
    for (iova, pa, size) in [
        (0x0010_1000, 0x8000_1000, 1 << 12),
        (0x0011_0000, 0x9001_0000, 1 << 16),
        (0x0030_0000, 0x8030_0000, 1 << 20),
        (0x0100_0000, 0x8100_0000, 1 << 24),
    ] {
        model.map(iova, pa, size, 1, Prot::RW).unwrap();
    }
    let mut f = Fake::new(10, 1, 16);
    assert_eq!(f.root, BASE);
    let l2 = f.alloc(2, 1);
    let root = f.root;
    f.set_short(root, 1, l2 as u32 | 0b01);
    f.set_short(l2, 1, 0x8000_1000 | SMALL_RW);
    for i in 16..32 {
        f.set_short(l2, i, 0x9001_0000 | LARGE_RW);
        f.set_short(root, i, 0x8100_0000 | SECTION_RW | SUPERSECTION);
    }
    f.set_short(root, 3, 0x8030_0000 | SECTION_RW);
    let s = check_short_structure(&f, &model).unwrap();
    assert_eq!((s.tables, s.leaves), (2, 4));
    assert_eq!(kind(check_short_range(&f, &model, 0, 1 << 32, &[])), "ok");
    (f, model, l2)
}

#[test]
fn hand_made_tables_pass_then_each_corruption_is_reported() {
    let (f, ..) = baseline();
    assert_eq!(f.frames[16].live, 17);
    type Corrupt = fn(&mut Fake, &mut Model, u64);
    let cases: [(&str, Corrupt, &str); 9] = [
        (
            "small page writable without w",
            |f, m, l2| {
                m.unmap(0x0010_1000, 1 << 12, 1).unwrap();
                m.map(0x0010_1000, 0x8000_1000, 1 << 12, 1, Prot::READ)
                    .unwrap();
                let _ = (f, l2);
            },
            "walker/leaf-differs-from-model",
        ),
        (
            "section without XN",
            |f, _, _| {
                let r = f.root;
                f.set_short(r, 3, 0x8030_0000 | SECTION_RW & !(1 << 4));
            },
            "walker/leaf-differs-from-model",
        ),
        (
            "large page with its TEX where a small page has it",
            |f, _, l2| {
                let d = 0x9001_0000 | LARGE_RW & !(1 << 12) | 1 << 6;
                (16..32).for_each(|i| f.set_short(l2, i, d));
            },
            "walker/leaf-differs-from-model",
        ),
        (
            "one slot of the large page differs",
            |f, _, l2| f.set_short(l2, 21, 0x9002_0000 | LARGE_RW),
            "walker/short-malformed",
        ),
        (
            "level-2 live count one short",
            |f, _, l2| f.meta(l2).live -= 1,
            "structure/live-entry-count",
        ),
        (
            "root live count counts the supersection once",
            |f, _, _| f.frames[0].live -= 15,
            "structure/live-entry-count",
        ),
        (
            "empty level-2 table left linked where the model freed it",
            |f, m, l2| {
                m.unmap(0x0010_0000, 1 << 20, 1).unwrap();
                f.set_short(l2, 1, 0);
                (16..32).for_each(|i| f.set_short(l2, i, 0));
            },
            "structure/table-not-in-model",
        ),
        (
            "page-table descriptor with a domain",
            |f, _, l2| {
                let r = f.root;
                f.set_short(r, 1, l2 as u32 | 1 << 5 | 0b01);
            },
            "structure/table-attribute-bits",
        ),
        (
            "poison in a linked level-2 table",
            |f, _, l2| f.poke(l2 + 8 * 100, POISON),
            "structure/poison-reachable",
        ),
    ];
    for (what, corrupt, want) in cases {
        let (mut f, mut m, l2) = baseline();
        corrupt(&mut f, &mut m, l2);
        assert_eq!(kind(check_short_structure(&f, &m)), want, "{what}");
    }
}

#[test]
fn the_range_walk_checks_attributes_and_meets_a_group_once() {
    let (mut f, m, l2) = baseline();
    // From the middle of the large page and of the supersection: each matched once.
    assert_eq!(
        kind(check_short_range(&f, &m, 0x0011_8000, 0x0012_0000, &[])),
        "ok"
    );
    assert_eq!(
        kind(check_short_range(&f, &m, 0x0180_0000, 0x0190_0000, &[])),
        "ok"
    );
    // A privileged small page where the model says any: seen by a range over it only.
    f.set_short(l2, 1, 0x8000_1000 | SMALL_RW & !(1 << 5));
    assert_eq!(
        kind(check_short_range(&f, &m, 0x0010_0000, 0x0010_1000, &[])),
        "ok"
    );
    assert_eq!(
        kind(check_short_range(&f, &m, 0x0010_1000, 0x0010_2000, &[])),
        "walker/leaf-differs-from-model"
    );
    // A model leaf missing in the range.
    let (mut f, m, _) = baseline();
    let r = f.root;
    f.set_short(r, 3, 0);
    assert_eq!(
        kind(check_short_range(&f, &m, 0x0030_0000, 0x0040_0000, &[])),
        "walker/model-leaf-missing"
    );
}
