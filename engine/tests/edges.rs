//! Map / lookup / unmap at the edges of the address space and of every table, for every
//! format, granule, IAS and leaf size: iova 0, the last page below 2^IAS, the first and last
//! entry of tables at every level (crossing from one table to the next inside one map call),
//! the boundaries between concatenated stage-2 root tables, and the top of the OAS.

#[macro_use]
mod common;

use common::*;
use ptfuzz_engine::{Concat, FormatKind, Granule, Prot};

use FormatKind::*;
use Granule::*;

/// What a two-page map starting at a point crosses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cross {
    /// Nothing in particular (iova 0, the top of the IAS).
    Edge,
    /// From the last entry of a table at level L (and every level below it down to the leaf)
    /// to the first entry of the next one.
    Tables(u32),
    /// From concatenated root table k-1 to root table k.
    RootTable(u64),
}

/// Starting points of two-page maps of `pg` in domain `e`.
fn points(e: &Expect, pg: u64) -> Vec<(u64, Cross)> {
    let ia = e.ia_size();
    let p = e.level_of(pg);
    let mut v = vec![(0, Cross::Edge), (ia - 2 * pg, Cross::Edge)];
    for l in e.start + 1..=p {
        let t = e.table_span(l);
        v.push((t - pg, Cross::Tables(l)));
        v.push((3 * t - pg, Cross::Tables(l)));
        v.push((ia - t - pg, Cross::Tables(l)));
    }
    let n = e.root_tables();
    if n > 1 {
        let rt = ia / n;
        for k in [1, n / 2, n - 1] {
            v.push((k * rt - pg, Cross::RootTable(k)));
        }
    }
    let mut out: Vec<(u64, Cross)> = Vec::new();
    for (iova, c) in v {
        if iova + 2 * pg <= ia && !out.iter().any(|&(i, _)| i == iova) {
            out.push((iova, c));
        }
    }
    out
}

/// Cheap checks around one two-page mapping `[iova, iova + 2 pg) -> pa` (or its absence).
fn check_pair(
    d: &ptfuzz_engine::Domain<ptfuzz_engine::FlushLog>,
    m: &Model,
    iova: u64,
    pg: u64,
    what: &str,
) {
    let e = &m.e;
    let mut probes = vec![iova, iova + 1, iova + pg - 1, iova + pg, iova + 2 * pg - 1];
    if iova > 0 {
        probes.push(iova - 1);
    }
    if iova + 2 * pg < e.ia_size() {
        probes.push(iova + 2 * pg);
    }
    for a in probes {
        let want = m.lookup(a);
        assert_eq!(d.lookup(a), want, "{what}: lookup {a:#x}");
        assert_eq!(translate(d, e, a), want, "{what}: device walk of {a:#x}");
    }
    let c = d.counters();
    assert_eq!(c.live, 1 + m.tables.len() as u64, "{what}: live tables");
    assert_eq!(
        c.allocated,
        c.live + c.deferred + c.freed,
        "{what}: counters {c:?}"
    );
}

fn edge_sequence(e: &Expect, pg: u64) {
    let mut d = domain_for(e);
    let mut m = Model::new(*e);
    let p = e.level_of(pg);
    for (i, (iova, cross)) in points(e, pg).into_iter().enumerate() {
        let what = format!("{e:?} pgsize {pg:#x} iova {iova:#x} {cross:?}");
        // Alternate between an arbitrary PA and the very top of the OAS.
        let pa = if i % 2 == 0 {
            pa_for(e, pg, 2, iova ^ i as u64)
        } else {
            e.oa_size() - 2 * pg
        };
        let prot = Prot::RW;
        let (want, _) = m.map(iova, pa, pg, 2, prot);
        assert_eq!(want, Ok(2 * pg), "{what}: model");
        assert_eq!(d.map(iova, pa, pg, 2, prot), want, "{what}: map");
        check_pair(&d, &m, iova, pg, &what);

        let (sa, la) = walk(&d, e, iova);
        let (sb, lb) = walk(&d, e, iova + pg);
        assert_eq!(la.map(|l| l.0), Some(p), "{what}: first page's leaf level");
        assert_eq!(lb.map(|l| l.0), Some(p), "{what}: second page's leaf level");
        match cross {
            Cross::Edge => {}
            Cross::Tables(l) => {
                for lv in l..=p {
                    let k = (lv - e.start) as usize;
                    assert_eq!(sa[k].index, e.entries(lv) - 1, "{what}: L{lv} last entry");
                    assert_eq!(sb[k].index, 0, "{what}: L{lv} first entry");
                    assert_ne!(sa[k].table, sb[k].table, "{what}: L{lv} tables differ");
                }
            }
            Cross::RootTable(k) => {
                let per = 1u64 << e.s();
                assert_eq!(sa[0].index, k * per - 1, "{what}");
                assert_eq!(sb[0].index, k * per, "{what}");
                assert_eq!(
                    sb[0].slot,
                    d.root() + k * e.granule_size(),
                    "{what}: first word of table k"
                );
                assert_eq!(sa[0].slot + 8, sb[0].slot, "{what}: one flat array");
            }
        }

        let (want, _) = m.unmap(iova, pg, 2);
        assert_eq!(want, Ok(2 * pg));
        assert_eq!(d.unmap(iova, pg, 2), want, "{what}: unmap");
        assert_eq!(
            d.counters().deferred,
            0,
            "{what}: two pages never free a table"
        );
        check_pair(&d, &m, iova, pg, &format!("{what} after unmap"));
    }
    check_against_model(&d, &m, &format!("{e:?} pgsize {pg:#x} after all edges"));

    // One map call filling a whole table at the leaf level plus one page on either side:
    // three tables; unmapping it frees exactly the middle one.
    if p > e.start {
        let t = e.table_span(p);
        let count = (1u64 << e.s()) + 2;
        let iova = t - pg;
        if iova + count * pg <= e.ia_size() && e.oa_size() / pg > count {
            let what = format!("{e:?} pgsize {pg:#x} long run at {iova:#x}");
            let pa = pa_for(e, pg, count, 7);
            let (want, _) = m.map(iova, pa, pg, count, Prot::READ);
            assert_eq!(d.map(iova, pa, pg, count, Prot::READ), want, "{what}");
            check_against_model(&d, &m, &what);
            let (want, fx) = m.unmap(iova, pg, count);
            assert_eq!(
                fx.freed,
                vec![(p, t)],
                "{what}: model frees the middle table"
            );
            let before = d.counters();
            assert_eq!(d.unmap(iova, pg, count), want, "{what}: unmap");
            let after = d.counters();
            assert_eq!(
                after.deferred,
                before.deferred + 1,
                "{what}: one table freed"
            );
            assert_eq!(after.live, before.live - 1, "{what}");
            check_against_model(&d, &m, &format!("{what} after unmap"));
        }
    }
}

/// Every IAS of every granule of `format` (ARM-FACTS ranges, both stage-2 policies): this
/// sweep is wider than the shared list (engine/tests/formats/), so it keeps its own.
fn edges(format: FormatKind) {
    let configs: Vec<Expect> = all_ias()
        .into_iter()
        .filter(|e| e.format == format)
        .collect();
    assert!(!configs.is_empty());
    for e in configs {
        for pg in e.page_sizes() {
            edge_sequence(&e, pg);
        }
    }
}

// Per LPAE format (`arm64_s1::edges`, ...): this file's walker and model are LPAE; the
// armv7s edges are in tests/suite.rs and tests/v7s.rs.
per_format!(lpae: [edges]);

/// The example of the brief: 4K, IAS 40, stage 2 starts at L1 with two concatenated tables
/// (OAS 40: required; OAS 48: `concat=max`); entries 511 and 512 of the flat root are the
/// last of table 0 and the first of table 1.
#[test]
fn stage2_4k_ias40_root_entries_511_and_512() {
    let cases = [
        (Arm64S2, 48, Concat::Max),
        (Arm64S2, 40, Concat::Required),
        (Arm32LpaeS2, 40, Concat::Required),
    ];
    for (f, oas, concat) in cases {
        let e = expected_with(f, G4K, 40, oas, concat).unwrap();
        assert_eq!((e.start, e.root_entries), (1, 1024));
        let mut d = domain_for(&e);
        let root = d.root();
        // Two 1G blocks, straight in the root.
        let iova = 511 * G1;
        assert_eq!(d.map(iova, 3 * G1, G1, 2, Prot::RW), Ok(2 * G1));
        let s511 = dev_word(&d, root + 8 * 511);
        let s512 = dev_word(&d, root + 4096);
        assert_eq!(
            decode(&e, s511, 1),
            Desc::Leaf(3 * G1),
            "{f}: root entry 511"
        );
        assert_eq!(
            decode(&e, s512, 1),
            Desc::Leaf(4 * G1),
            "{f}: root entry 512 = table 1 entry 0"
        );
        assert_eq!(d.lookup(512 * G1 - 1), Some(4 * G1 - 1));
        assert_eq!(d.lookup(512 * G1), Some(4 * G1));
        assert_eq!(d.lookup(513 * G1), None);
        assert_eq!(d.unmap(iova, G1, 2), Ok(2 * G1));
        // 2M pages crossing the same boundary: one L2 table under each root entry.
        assert_eq!(
            d.map(512 * G1 - M2, 0x1_0000_0000, M2, 2, Prot::RW),
            Ok(2 * M2)
        );
        let l2a = decode(&e, dev_word(&d, root + 8 * 511), 1);
        let l2b = decode(&e, dev_word(&d, root + 4096), 1);
        let (Desc::Table(a), Desc::Table(b)) = (l2a, l2b) else {
            panic!("{f}: expected tables under root entries 511/512, got {l2a:?} {l2b:?}")
        };
        assert_eq!(
            decode(&e, dev_word(&d, a + 8 * 511), 2),
            Desc::Leaf(0x1_0000_0000)
        );
        assert_eq!(
            decode(&e, dev_word(&d, b), 2),
            Desc::Leaf(0x1_0000_0000 + M2)
        );
        assert_eq!(
            d.lookup(512 * G1 + 0x1234),
            Some(0x1_0000_0000 + M2 + 0x1234)
        );
        // The last page below 2^40 is in root entry 1023 (table 1, last word).
        assert_eq!(d.map((1 << 40) - K4, 0x5000, K4, 1, Prot::READ), Ok(K4));
        let (steps, _) = walk(&d, &e, (1 << 40) - 1);
        assert_eq!(steps[0].slot, root + 4096 + 8 * 511);
        assert_eq!(d.lookup((1 << 40) - 1), Some(0x5fff));
        assert_eq!(d.lookup(1 << 40), None);
        check_structure(&d, &e);
    }
}

/// 64K, IAS 32, stage 2 `concat=max`: the root is eight concatenated L3 tables, so pages are
/// leaves in the root itself and table k covers [k * 512M, (k+1) * 512M).
#[test]
fn stage2_64k_ias32_pages_in_concatenated_l3_root() {
    let e = expected_with(Arm64S2, G64K, 32, 32, Concat::Max).unwrap();
    assert_eq!((e.start, e.root_tables()), (3, 8));
    let mut d = domain_for(&e);
    for k in 1..8u64 {
        let iova = k * M512 - K64;
        assert_eq!(d.map(iova, iova, K64, 2, Prot::RW), Ok(2 * K64));
        assert_eq!(d.lookup(iova + K64 + 7), Some(iova + K64 + 7));
        let last = dev_word(&d, d.root() + k * K64 - 8);
        let first = dev_word(&d, d.root() + k * K64);
        assert_eq!(decode(&e, last, 3), Desc::Leaf(iova));
        assert_eq!(decode(&e, first, 3), Desc::Leaf(iova + K64));
    }
    assert_eq!(
        d.counters().allocated,
        1,
        "no table besides the root is ever needed"
    );
    assert_eq!(d.map((1 << 32) - K64, 0, K64, 1, Prot::RW), Ok(K64));
    assert_eq!(d.lookup(u32::MAX as u64), Some(K64 - 1));
}

/// lookup takes any byte address: addresses at or beyond 2^IAS are never translated, even
/// when the top page is mapped and the address aliases it modulo 2^IAS.
#[test]
fn lookup_beyond_ias_is_none() {
    for e in sample() {
        let mut d = domain_for(&e);
        let pg = *e.page_sizes().last().unwrap();
        assert_eq!(d.map(e.ia_size() - pg, 0, pg, 1, Prot::RW), Ok(pg));
        assert_eq!(d.map(0, pg, pg, 1, Prot::RW), Ok(pg));
        assert_eq!(d.lookup(e.ia_size() - 1), Some(pg - 1));
        for a in [
            e.ia_size(),
            e.ia_size() + 1,
            e.ia_size() + e.ia_size() - 1,
            1 << 48,
            1 << 63,
            u64::MAX,
        ] {
            assert_eq!(d.lookup(a), None, "{e:?}: lookup {a:#x}");
        }
    }
}

/// Map and unmap calls that cover many tables at once, for every leaf size: the whole first
/// table span of the leaf level and a block of the level above, in one call each.
#[test]
fn large_single_calls_across_many_tables() {
    for e in sample() {
        for pg in e.page_sizes() {
            let p = e.level_of(pg);
            if p <= e.start + 1 {
                continue;
            }
            // Two whole leaf-level tables plus a page, starting one page into a table.
            let count = 2 * (1u64 << e.s()) + 1;
            let iova = e.table_span(p - 1) + pg;
            if iova + count * pg > e.ia_size() || e.oa_size() / pg <= count {
                continue;
            }
            let what = format!("{e:?} pgsize {pg:#x}");
            let mut d = domain_for(&e);
            let mut m = Model::new(e);
            let pa = pa_for(&e, pg, count, 1);
            let (want, _) = m.map(iova, pa, pg, count, Prot::RW);
            assert_eq!(d.map(iova, pa, pg, count, Prot::RW), want, "{what}");
            check_against_model(&d, &m, &what);
            let (want, _) = m.unmap(iova, pg, count);
            assert_eq!(d.unmap(iova, pg, count), want, "{what}: unmap");
            check_against_model(&d, &m, &format!("{what} after unmap"));
        }
    }
}
