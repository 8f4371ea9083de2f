//! The model's table nodes and allocator accounting (model/tables.rs).

use super::*;
use ptfuzz_engine::config::{FormatKind, Granule};

use FormatKind::*;
use Granule::*;

const K4: u64 = 1 << 12;
const K16: u64 = 1 << 14;
const K64: u64 = 1 << 16;
const M2: u64 = 1 << 21;
const M32: u64 = 1 << 25;
const M512: u64 = 1 << 29;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::RW;

fn model(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Model {
    Model::new(&DomainConfig::new(f, g, ias, oas)).unwrap()
}

fn s1_4k() -> Model {
    model(Arm64S1, G4K, 48, 48)
}

fn err(kind: ErrorKind, mapped: u64) -> Result<u64, MapError> {
    Err(MapError::new(kind, mapped))
}

/// (allocated, live, deferred, freed, failed)
fn c(m: &Model) -> (u64, u64, u64, u64, u64) {
    let c = m.counters();
    assert_eq!(c.allocated, c.live + c.deferred + c.freed, "{c:?}");
    assert_eq!(c.live, m.table_count() + 1, "{c:?}");
    (c.allocated, c.live, c.deferred, c.freed, c.failed)
}

fn tables(m: &Model) -> Vec<(u32, u64)> {
    m.tables().collect()
}

/// Every node's parent exists, and every leaf's enclosing nodes exist.
fn check_invariants(m: &Model) {
    let start = m.rules().start_level;
    for (l, b) in m.tables() {
        assert!(l > start && l <= 3, "L{l} {b:#x}");
        assert_eq!(b % m.table_span(l), 0, "L{l} {b:#x} misaligned");
        if l > start + 1 {
            let p = b & !(m.table_span(l - 1) - 1);
            assert!(m.has_table(l - 1, p), "L{l} {b:#x} has no parent");
        }
    }
    for (a, _, size, _) in m.leaves() {
        let level = m.leaf_level(size);
        for l in start + 1..=level {
            assert!(
                m.has_table(l, a & !(m.table_span(l) - 1)),
                "leaf {a:#x} lacks L{l}"
            );
        }
        // No table under a leaf.
        for l in level + 1..=3 {
            assert!(
                !m.tables()
                    .any(|(tl, tb)| tl == l && tb >= a && tb < a + size),
                "table under leaf {a:#x}"
            );
        }
    }
}

#[test]
fn fresh_domain_counts_only_the_root() {
    let m = s1_4k();
    assert_eq!(c(&m), (1, 1, 0, 0, 0));
    assert_eq!(tables(&m), []);
}

#[test]
fn first_map_in_4k_48_allocates_three_tables() {
    let mut m = s1_4k();
    assert_eq!(m.map(0x40_0000_1000, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (4, 4, 0, 0, 0));
    assert_eq!(
        tables(&m),
        [(1, 0), (2, 0x40_0000_0000), (3, 0x40_0000_0000)]
    );
    assert_eq!(m.table_span(1), 1 << 39);
    assert_eq!(m.table_span(2), G1);
    assert_eq!(m.table_span(3), M2);
    // Same L3 table: nothing new; a new 2M slot: one L3; a new 1G slot: L2 + L3.
    assert_eq!(m.map(0x40_0000_2000, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (4, 4, 0, 0, 0));
    assert_eq!(m.map(0x40_0020_0000, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (5, 5, 0, 0, 0));
    assert_eq!(m.map(0x40_4000_0000, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (7, 7, 0, 0, 0));
    // A 2M block needs L1 + L2 only; a 1G block only L1.
    assert_eq!(m.map(0x80_0000_0000, 0, M2, 1, RW), Ok(M2));
    assert_eq!(c(&m), (9, 9, 0, 0, 0));
    assert_eq!(m.map(0x100_0000_0000, 0, G1, 1, RW), Ok(G1));
    assert_eq!(c(&m), (10, 10, 0, 0, 0));
    check_invariants(&m);
    // Argument errors, no-permission and `exists` allocate nothing.
    assert_eq!(
        m.map(0x200_0000_0000, 0, K4, 0, RW),
        err(ErrorKind::Inval, 0)
    );
    assert_eq!(m.map(0x200_0000_0000, 0, K4, 1, Prot::EXEC), Ok(0));
    assert_eq!(
        m.map(0x100_0000_0000, 0, K4, 1, RW),
        err(ErrorKind::Exists, 0)
    );
    assert_eq!(
        m.map(0x40_0000_0000, 0, G1, 1, RW),
        err(ErrorKind::Exists, 0)
    );
    assert_eq!(c(&m), (10, 10, 0, 0, 0));
}

#[test]
fn fewer_levels_for_other_geometries() {
    // (format, granule, ias, oas, page size, tables the first page needs)
    let cases = [
        (Arm64S1, G16K, 48, 48, K16, 3), // L0 root with 2 entries
        (Arm64S1, G16K, 48, 48, M32, 2),
        (Arm64S1, G16K, 36, 48, K16, 1), // start L2
        (Arm64S1, G16K, 36, 48, M32, 0),
        (Arm64S1, G64K, 48, 48, K64, 2), // start L1
        (Arm64S1, G64K, 48, 48, M512, 1),
        (Arm64S1, G64K, 42, 48, K64, 1), // start L2
        (Arm64S2, G4K, 40, 40, K4, 2),   // L1, 2 concatenated tables (PA 40)
        (Arm64S2, G4K, 40, 40, M2, 1),
        (Arm64S2, G4K, 40, 40, G1, 0),
        (Arm64S2, G4K, 40, 48, K4, 3), // L0, 2 entries (PA 48 allows L0)
        (Arm64S2, G4K, 32, 48, K4, 2), // L1, 4 entries (as Linux)
        (Arm64S2, G16K, 48, 48, K16, 2), // L1, 2 concatenated tables
        (Arm64S2, G64K, 32, 48, K64, 1), // L2, 8 entries (as Linux)
        (Arm64S2, G64K, 34, 48, M512, 0), // L2
        (Arm64S2, G64K, 34, 48, K64, 1),
        (Arm32LpaeS1, G4K, 32, 40, K4, 2),
        (Arm32LpaeS2, G4K, 40, 40, K4, 2),
    ];
    for (f, g, ias, oas, ps, n) in cases {
        let mut m = model(f, g, ias, oas);
        let top = (1u64 << ias) - ps;
        assert_eq!(m.map(top, 0, ps, 1, RW), Ok(ps), "{f} {g} {ias}");
        assert_eq!(c(&m), (1 + n, 1 + n, 0, 0, 0), "{f} {g} {ias} {ps:#x}");
        assert_eq!(m.unmap(top, ps, 1), Ok(ps));
        // The unmap covered the page only: a table spans more than one page and stays.
        assert_eq!(c(&m), (1 + n, 1 + n, 0, 0, 0), "{f} {g} {ias} {ps:#x}");
        check_invariants(&m);
    }
    // concat=max: the deepest start level, so fewer tables below the root.
    // (granule, ias, page size, tables the first page needs)
    for (g, ias, ps, n) in [
        (G4K, 32, K4, 1),   // L2, 4 concatenated tables
        (G4K, 40, K4, 2),   // L1, 2 concatenated tables
        (G64K, 32, K64, 0), // L3, 8 concatenated tables
    ] {
        let mut cfg = DomainConfig::new(Arm64S2, g, ias, 48);
        cfg.concat = ptfuzz_engine::config::Concat::Max;
        let mut m = Model::new(&cfg).unwrap();
        let top = (1u64 << ias) - ps;
        assert_eq!(m.map(top, 0, ps, 1, RW), Ok(ps), "max {g} {ias}");
        assert_eq!(c(&m), (1 + n, 1 + n, 0, 0, 0), "max {g} {ias} {ps:#x}");
        check_invariants(&m);
    }
}

#[test]
fn fail_nth_at_each_allocation_of_a_three_table_map() {
    let a = 0x12_3456_7000;
    for n in 1..=3u64 {
        let mut m = s1_4k();
        m.fail_nth(Some(n));
        assert_eq!(m.map(a, 0, K4, 1, RW), err(ErrorKind::Nomem, 0), "n={n}");
        // The nodes allocated before the failure stay (empty).
        assert_eq!(c(&m), (n, n, 0, 0, 1), "n={n}");
        let expect: Vec<(u32, u64)> = [(1, 0), (2, a & !(G1 - 1)), (3, a & !(M2 - 1))]
            .into_iter()
            .take(n as usize - 1)
            .collect();
        assert_eq!(tables(&m), expect, "n={n}");
        assert_eq!(m.lookup(a), None);
        // Disarmed by the failure: the retry allocates the rest.
        assert_eq!(m.map(a, 0, K4, 1, RW), Ok(K4), "n={n}");
        assert_eq!(c(&m), (4, 4, 0, 0, 1), "n={n}");
        check_invariants(&m);
    }
    // n = 4: the map succeeds, and the 4th attempt (the next one) fails.
    let mut m = s1_4k();
    m.fail_nth(Some(4));
    assert_eq!(m.map(a, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (4, 4, 0, 0, 0));
    assert_eq!(
        m.map(a + K4, 0, K4, 1, RW),
        Ok(K4),
        "no allocation: no attempt"
    );
    assert_eq!(m.map(a + M2, 0, K4, 1, RW), err(ErrorKind::Nomem, 0));
    assert_eq!(c(&m), (4, 4, 0, 0, 1));
    assert_eq!(m.map(a + M2, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (5, 5, 0, 0, 1));
    // None and Some(0) disarm.
    for off in [None, Some(0)] {
        m.fail_nth(Some(1));
        m.fail_nth(off);
        assert_eq!(m.map(a + 8 * M2, 0, K4, 1, RW), Ok(K4), "{off:?}");
        m.unmap(a + 8 * M2, K4, 1).unwrap();
    }
}

#[test]
fn fail_nth_in_the_middle_of_a_map_crossing_a_table_boundary() {
    let mut m = s1_4k();
    m.fail_nth(Some(4));
    // Pages 0, 1 need L1, L2, L3@0; page 2 (at 2M) needs L3@2M: the 4th attempt fails.
    let a = M2 - 2 * K4;
    assert_eq!(
        m.map(a, 0x1000_0000, K4, 4, RW),
        err(ErrorKind::Nomem, 2 * K4)
    );
    assert_eq!(c(&m), (4, 4, 0, 0, 1));
    assert_eq!(tables(&m), [(1, 0), (2, 0), (3, 0)]);
    assert_eq!(m.lookup(a + K4 + 5), Some(0x1000_1005));
    assert_eq!(m.lookup(M2), None);
    assert_eq!(m.map(M2, 0x1000_2000, K4, 2, RW), Ok(2 * K4));
    assert_eq!(tables(&m), [(1, 0), (2, 0), (3, 0), (3, M2)]);

    // Blocks: 2M pages crossing a 1G boundary fail on the new L2 table.
    let mut m = s1_4k();
    m.fail_nth(Some(3));
    assert_eq!(
        m.map(G1 - 2 * M2, 0, M2, 3, RW),
        err(ErrorKind::Nomem, 2 * M2)
    );
    assert_eq!(tables(&m), [(1, 0), (2, 0)]);
    assert_eq!(c(&m), (3, 3, 0, 0, 1));
    check_invariants(&m);
}

#[test]
fn empty_table_at_the_slot_is_replaced_and_freed() {
    let mut m = s1_4k();
    assert_eq!(m.map(0, 0, K4, 1, RW), Ok(K4));
    assert_eq!(m.unmap(0, K4, 1), Ok(K4));
    assert_eq!(c(&m), (4, 4, 0, 0, 0), "an emptied table stays");
    assert_eq!(m.take_freed_tables(), []);
    assert_eq!(m.map(0, 0, M2, 1, RW), Ok(M2));
    assert_eq!(c(&m), (4, 3, 1, 0, 0));
    assert_eq!(m.take_freed_tables(), [(3, 0, M2)]);
    assert_eq!(tables(&m), [(1, 0), (2, 0)]);

    // Two levels under a 1G slot: both go when a 1G block replaces them.
    assert_eq!(m.map(G1 + 5 * M2, 0, K4, 1, RW), Ok(K4));
    assert_eq!(m.map(G1 + 9 * M2, 0, M2, 1, RW), Ok(M2));
    assert_eq!(m.unmap(G1 + 5 * M2, K4, 1), Ok(K4));
    assert_eq!(m.unmap(G1 + 9 * M2, M2, 1), Ok(M2));
    assert_eq!(c(&m), (6, 5, 1, 0, 0));
    assert_eq!(m.map(G1, 0, G1, 1, RW), Ok(G1));
    assert_eq!(c(&m), (6, 3, 3, 0, 0));
    assert_eq!(m.take_freed_tables(), [(2, G1, G1), (3, G1 + 5 * M2, M2)]);

    // A table at the slot with a leaf under it is not replaced.
    assert_eq!(m.map(2 * G1, 0, K4, 1, RW), Ok(K4));
    assert_eq!(m.map(2 * G1, 0, G1, 1, RW), err(ErrorKind::Exists, 0));
    assert_eq!(m.map(2 * G1, 0, M2, 2, RW), err(ErrorKind::Exists, 0));
    assert_eq!(m.take_freed_tables(), []);

    // Tables left empty by an injected failure are replaced the same way.
    m.fail_nth(Some(2));
    assert_eq!(m.map(3 * G1, 0, K4, 1, RW), err(ErrorKind::Nomem, 0));
    assert!(m.has_table(2, 3 * G1));
    assert_eq!(m.map(3 * G1, 0, G1, 1, RW), Ok(G1));
    assert_eq!(m.take_freed_tables(), [(2, 3 * G1, G1)]);

    // A multi-page map replacing several empty tables as it goes.
    for i in 0..3 {
        m.map(4 * G1 + i * M2, 0, K4, 1, RW).unwrap();
        m.unmap(4 * G1 + i * M2, K4, 1).unwrap();
    }
    let before = c(&m);
    assert_eq!(m.map(4 * G1, 0, M2, 4, RW), Ok(4 * M2));
    assert_eq!(c(&m).1, before.1 - 3);
    assert_eq!(
        m.take_freed_tables(),
        [
            (3, 4 * G1, M2),
            (3, 4 * G1 + M2, M2),
            (3, 4 * G1 + 2 * M2, M2)
        ]
    );
    check_invariants(&m);
}

#[test]
fn unmap_frees_exactly_the_tables_whose_whole_span_was_removed() {
    let mut m = s1_4k();
    assert_eq!(m.map(0, 0, K4, 514, RW), Ok(M2 + 2 * K4));
    assert_eq!(tables(&m), [(1, 0), (2, 0), (3, 0), (3, M2)]);
    // Stops at the hole after 514 pages: L3@0 is inside, L3@2M only partly.
    assert_eq!(m.unmap(0, K4, 1024), Ok(M2 + 2 * K4));
    assert_eq!(m.take_freed_tables(), [(3, 0, M2)]);
    assert_eq!(tables(&m), [(1, 0), (2, 0), (3, M2)]);
    assert_eq!(c(&m), (5, 4, 1, 0, 0));

    // The whole span in two calls: neither covers it, the table stays.
    m.map(0, 0, K4, 512, RW).unwrap();
    assert_eq!(m.unmap(0, K4, 256), Ok(256 * K4));
    assert_eq!(m.unmap(256 * K4, K4, 256), Ok(256 * K4));
    assert_eq!(m.take_freed_tables(), []);
    assert!(m.has_table(3, 0));

    // A 1G page over leaves in two L3 tables (one empty table in between is kept only if
    // outside): L2@0 and every L3 under it go; L1@0 (512G) stays.
    m.map(4 * M2, 0, K4, 1, RW).unwrap();
    m.map(7 * M2, 0, M2, 1, RW).unwrap();
    assert_eq!(m.unmap(0, G1, 1), Ok(G1));
    assert_eq!(
        m.take_freed_tables(),
        [(2, 0, G1), (3, 0, M2), (3, M2, M2), (3, 4 * M2, M2)]
    );
    assert_eq!(tables(&m), [(1, 0)]);
    assert_eq!(m.take_removed_leaves().len(), 514 + 512 + 2);

    // Nothing unmapped: nothing freed, even an empty table in range.
    m.map(G1, 0, K4, 1, RW).unwrap();
    m.unmap(G1, K4, 1).unwrap();
    assert_eq!(m.unmap(G1, M2, 1), Ok(0), "a hole");
    assert!(m.has_table(3, G1));
    // Counted 2M pages over an empty table and a leaf: both go, and the emptied table too.
    m.map(G1 + M2 + K4, 0, K4, 1, RW).unwrap();
    assert_eq!(m.unmap(G1 + M2, M2, 1), Ok(M2));
    assert_eq!(m.take_freed_tables(), [(3, G1 + M2, M2)]);
    assert!(m.has_table(3, G1), "span [G1, G1+2M) was not unmapped");
    check_invariants(&m);
    assert_eq!(
        m.take_removed_leaves(),
        [(G1, 0, K4, RW), (G1 + M2 + K4, 0, K4, RW)]
    );
}

#[test]
fn grace_period_and_clear() {
    let mut m = s1_4k();
    m.map(0, 0, K4, 1, RW).unwrap();
    m.map(G1, 0x5000, K4, 2, Prot::READ).unwrap();
    assert_eq!(c(&m), (6, 6, 0, 0, 0));
    assert_eq!(m.unmap(G1, M2, 1), Ok(M2));
    assert_eq!(c(&m), (6, 5, 1, 0, 0));
    m.grace_period();
    assert_eq!(c(&m), (6, 5, 0, 1, 0));
    m.grace_period();
    assert_eq!(c(&m), (6, 5, 0, 1, 0));
    assert_eq!(
        m.take_removed_leaves(),
        [
            (G1, 0x5000, K4, Prot::READ),
            (G1 + K4, 0x6000, K4, Prot::READ)
        ]
    );
    m.take_freed_tables();
    m.clear();
    assert_eq!(c(&m), (6, 1, 4, 1, 0));
    assert_eq!(tables(&m), []);
    assert_eq!(m.take_removed_leaves(), [(0, 0, K4, RW)]);
    assert_eq!(
        m.take_freed_tables(),
        [(1, 0, 1 << 39), (2, 0, G1), (2, G1, G1), (3, 0, M2)]
    );
    m.grace_period();
    assert_eq!(c(&m), (6, 1, 0, 5, 0));
    assert_eq!(m.map(0, 0, K4, 1, RW), Ok(K4));
    assert_eq!(c(&m), (9, 4, 0, 5, 0));
    // With logging off nothing is kept.
    m.set_removal_logging(false);
    m.clear();
    assert_eq!(m.take_freed_tables(), []);
    assert_eq!(m.take_removed_leaves(), []);
    assert_eq!(c(&m), (9, 1, 3, 5, 0));
}

#[test]
fn tables_above_oas_fail_without_consuming_fail_nth() {
    // 16 frames below 2^32 (phys_base is 16-granule aligned): the root (4 entries, start
    // L1, one frame) and 15 tables.
    let cfg = DomainConfig {
        phys_base: (1 << 32) - 16 * K4,
        ..DomainConfig::new(Arm64S1, G4K, 32, 32)
    };
    let mut m = Model::new(&cfg).unwrap();
    for i in 0..14 {
        assert_eq!(m.map(i * M2, 0, K4, 1, RW), Ok(K4)); // L2@0 + 14 L3
    }
    assert_eq!(c(&m), (16, 16, 0, 0, 0));
    m.fail_nth(Some(1));
    assert_eq!(m.map(G1, 0, K4, 1, RW), err(ErrorKind::Nomem, 0));
    assert_eq!(c(&m), (16, 16, 0, 0, 1), "the limit, not the injection");
    // A freed frame is reusable only after the grace period.
    assert_eq!(m.unmap(0, M2, 1), Ok(M2));
    assert_eq!(c(&m), (16, 15, 1, 0, 1));
    assert_eq!(m.map(G1, 0, K4, 1, RW), err(ErrorKind::Nomem, 0));
    assert_eq!(
        c(&m),
        (16, 15, 1, 0, 2),
        "still the limit; the injection still armed"
    );
    m.grace_period();
    assert_eq!(
        m.map(G1, 0, K4, 1, RW),
        err(ErrorKind::Nomem, 0),
        "now the injection"
    );
    assert_eq!(c(&m), (16, 15, 0, 1, 3));
    // L2@1G takes the released frame, L3@1G hits the limit again.
    assert_eq!(m.map(G1, 0, K4, 1, RW), err(ErrorKind::Nomem, 0));
    assert_eq!(c(&m), (17, 16, 0, 1, 4));
    assert!(m.has_table(2, G1));
    // Blocks need no table.
    assert_eq!(m.map(G1, 0, M2, 1, RW), Ok(M2));
    assert_eq!(m.map(0, 0, M2, 1, RW), Ok(M2));
    check_invariants(&m);
}

#[test]
fn big_maps_stay_cheap() {
    let mut m = s1_4k();
    let n = 1u64 << 18; // 1G of 4K pages: 512 L3 tables
    assert_eq!(m.map(G1, 0, K4, n, RW), Ok(n * K4));
    assert_eq!(c(&m), (1 + 2 + 512, 1 + 2 + 512, 0, 0, 0));
    m.set_removal_logging(false);
    assert_eq!(m.unmap(G1, K4, n), Ok(n * K4));
    assert_eq!(c(&m), (515, 2, 513, 0, 0));
}
