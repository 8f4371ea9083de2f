//! Every error and stop of map/unmap (DESIGN "Semantics", SEMANTICS map/unmap), each
//! checked to change nothing it must not change, and the refusal of invalid domains.

#[macro_use]
mod common;

use common::*;
use ptfuzz_engine::{
    CustomAllocator, Domain, DomainConfig, ErrorKind, FlushLog, FormatKind, Granule, MapError, Prot,
};

use ErrorKind::*;
use FormatKind::*;
use Granule::*;

/// A domain with something in it, and the model of it. With `small` the smallest page size
/// and `big` the next one (when the domain has two):
/// - pages 0..3 of `small` at 0;
/// - a `big` block at 2*big;
/// - one `small` leaf at 4*big + small (so the `big` slot at 4*big holds a table with a leaf);
/// - an empty table at the `big` slot 6*big (a `small` page mapped, then unmapped).
struct Setup {
    d: Domain<FlushLog>,
    m: Model,
    small: u64,
    big: Option<u64>,
}

fn populated(e: &Expect) -> Setup {
    let mut d = domain_for(e);
    let mut m = Model::new(*e);
    let sizes = e.page_sizes();
    let small = sizes[0];
    let big = sizes.get(1).copied();
    let map = |d: &mut Domain<FlushLog>, m: &mut Model, iova, pa, pg, n| {
        let (want, _) = m.map(iova, pa, pg, n, Prot::RW);
        assert_eq!(want, Ok(n * pg));
        assert_eq!(
            d.map(iova, pa, pg, n, Prot::RW),
            want,
            "{e:?}: setup map {iova:#x}"
        );
    };
    map(&mut d, &mut m, 0, 0x10 * small, small, 3);
    if let Some(big) = big {
        assert!(8 * big <= e.ia_size());
        map(&mut d, &mut m, 2 * big, big, big, 1);
        map(&mut d, &mut m, 4 * big + small, small, small, 1);
        map(&mut d, &mut m, 6 * big, 0, small, 1);
        assert_eq!(m.unmap(6 * big, small, 1).0, Ok(small));
        assert_eq!(d.unmap(6 * big, small, 1), Ok(small));
    }
    d.flush_ops_mut().events.clear();
    check_against_model(&d, &m, "setup");
    Setup { d, m, small, big }
}

fn map_err(kind: ErrorKind, mapped: u64) -> Result<u64, MapError> {
    Err(MapError::new(kind, mapped))
}

/// Runs one map that must fail (or be a no-op) without changing anything.
fn map_refused(
    s: &mut Setup,
    args: (u64, u64, u64, u64, Prot),
    want: Result<u64, MapError>,
    what: &str,
) {
    let (iova, pa, pg, n, prot) = args;
    let before = snapshot(&s.d);
    let what = format!(
        "{:?}: {what}: map({iova:#x}, {pa:#x}, {pg:#x}, {n:#x}, {prot})",
        s.m.e
    );
    assert_eq!(s.d.map(iova, pa, pg, n, prot), want, "{what}");
    assert_eq!(
        s.m.clone().map(iova, pa, pg, n, prot).0,
        want,
        "{what}: model disagrees with test"
    );
    assert_unchanged(&s.d, &before, &what);
}

fn unmap_refused(s: &mut Setup, args: (u64, u64, u64), want: Result<u64, ErrorKind>, what: &str) {
    let (iova, pg, n) = args;
    let before = snapshot(&s.d);
    let what = format!("{:?}: {what}: unmap({iova:#x}, {pg:#x}, {n:#x})", s.m.e);
    assert_eq!(s.d.unmap(iova, pg, n), want, "{what}");
    assert_eq!(
        s.m.clone().unmap(iova, pg, n).0,
        want,
        "{what}: model disagrees with test"
    );
    assert_unchanged(&s.d, &before, &what);
}

fn map_inval_changes_nothing(f: FormatKind) {
    for e in drive_configs(f) {
        let mut s = populated(&e);
        let ia = e.ia_size();
        for &pg in &e.page_sizes() {
            let rw = Prot::RW;
            let free = ia - 2 * pg; // unmapped in every setup
            map_refused(&mut s, (free, 0, pg, 0, rw), map_err(Inval, 0), "count 0");
            map_refused(
                &mut s,
                (ia, 0, pg, 0, rw),
                map_err(Inval, 0),
                "count 0 beats range",
            );
            map_refused(
                &mut s,
                (0, 0, pg, 0, rw),
                map_err(Inval, 0),
                "count 0 beats exists",
            );
            map_refused(
                &mut s,
                (0, 0, pg, 0, Prot::EXEC),
                map_err(Inval, 0),
                "count 0 beats prot",
            );
            if pg > 0x800 {
                let mis = pg / 2;
                map_refused(
                    &mut s,
                    (free + mis, 0, pg, 1, rw),
                    map_err(Inval, 0),
                    "iova misaligned",
                );
                map_refused(
                    &mut s,
                    (free + 8, 0, pg, 1, rw),
                    map_err(Inval, 0),
                    "iova misaligned by 8",
                );
                map_refused(
                    &mut s,
                    (free, mis, pg, 1, rw),
                    map_err(Inval, 0),
                    "pa misaligned",
                );
                map_refused(
                    &mut s,
                    (free, 0x800, pg, 1, rw),
                    map_err(Inval, 0),
                    "pa misaligned by 2K",
                );
                map_refused(
                    &mut s,
                    (ia + mis, 0, pg, 1, rw),
                    map_err(Inval, 0),
                    "misaligned beats range",
                );
                map_refused(
                    &mut s,
                    (free, e.oa_size() + mis, pg, 1, rw),
                    map_err(Inval, 0),
                    "pa misaligned beats range",
                );
                map_refused(
                    &mut s,
                    (free + mis, 0, pg, 1, Prot::EXEC),
                    map_err(Inval, 0),
                    "misaligned beats prot",
                );
                map_refused(
                    &mut s,
                    (mis, 0, pg, 1, rw),
                    map_err(Inval, 0),
                    "misaligned beats exists",
                );
            }
        }
        for &pg in CANDIDATE_PGSIZES
            .iter()
            .filter(|p| !e.page_sizes().contains(p))
        {
            map_refused(
                &mut s,
                (0, 0, pg, 1, Prot::RW),
                map_err(Inval, 0),
                "unsupported pgsize",
            );
            map_refused(
                &mut s,
                (ia, 0, pg, 1, Prot::RW),
                map_err(Inval, 0),
                "unsupported pgsize beats range",
            );
            map_refused(
                &mut s,
                (0, 0, pg, 1, Prot::EXEC),
                map_err(Inval, 0),
                "unsupported pgsize beats prot",
            );
        }
        check_against_model(&s.d, &s.m, "after inval maps");
    }
}

#[test]
fn map_range_changes_nothing() {
    for e in sample() {
        let mut s = populated(&e);
        let ia = e.ia_size();
        let oa = e.oa_size();
        for &pg in &e.page_sizes() {
            let rw = Prot::RW;
            let r = map_err(Range, 0);
            map_refused(&mut s, (ia, 0, pg, 1, rw), r, "iova = 2^IAS");
            map_refused(
                &mut s,
                (ia - pg, 0, pg, 2, rw),
                r,
                "last page + 1 beyond IAS",
            );
            map_refused(&mut s, (0, 0, pg, ia / pg + 1, rw), r, "whole IAS + 1 page");
            map_refused(&mut s, (1 << 63, 0, pg, 1, rw), r, "iova 2^63");
            map_refused(
                &mut s,
                (!(pg - 1), 0, pg, 1, rw),
                r,
                "iova at the top of u64",
            );
            map_refused(
                &mut s,
                (!(pg - 1), 0, pg, 2, rw),
                r,
                "iova + size overflows",
            );
            map_refused(
                &mut s,
                (0, 0, pg, u64::MAX / pg + 1, rw),
                r,
                "count * pgsize overflows",
            );
            map_refused(&mut s, (0, 0, pg, u64::MAX, rw), r, "count u64::MAX");
            let free = ia - pg;
            map_refused(&mut s, (free, oa, pg, 1, rw), r, "pa = 2^OAS");
            map_refused(
                &mut s,
                (free - pg, oa - pg, pg, 2, rw),
                r,
                "pa range beyond OAS",
            );
            map_refused(
                &mut s,
                (free, !(pg - 1), pg, 1, rw),
                r,
                "pa + size overflows",
            );
            map_refused(&mut s, (free, 1 << 48, pg, 1, rw), r, "pa 2^48");
            map_refused(
                &mut s,
                (ia, 0, pg, 1, Prot::EXEC | Prot::CACHE),
                r,
                "range beats prot",
            );
            map_refused(
                &mut s,
                (ia - pg, oa, pg, 1, Prot::from_bits_truncate(0)),
                r,
                "pa range beats prot",
            );
            // Exists would come later: a range error maps nothing, not even the first pages.
            map_refused(&mut s, (0, 0, pg, ia / pg + 1, rw), r, "range beats exists");
        }
        check_against_model(&s.d, &s.m, "after range maps");
    }
}

/// Arm64 stage 1 may have OAS < IAS: the OA check uses OAS, not IAS.
#[test]
fn map_range_uses_oas_for_the_output() {
    let e = expected(Arm64S1, G4K, 48, 32).unwrap();
    let mut s = populated(&e);
    map_refused(
        &mut s,
        (1 << 40, 1 << 32, K4, 1, Prot::RW),
        map_err(Range, 0),
        "pa 4G in 32-bit OAS",
    );
    map_refused(
        &mut s,
        (1 << 40, (1 << 32) - K4, K4, 2, Prot::RW),
        map_err(Range, 0),
        "pa crossing 4G",
    );
    assert_eq!(s.d.map(1 << 40, (1 << 32) - K4, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(s.d.lookup((1 << 40) + 0xfff), Some(0xffff_ffff));
    assert_eq!(
        s.d.map((1 << 48) - G1, 3 * G1, G1, 1, Prot::RW),
        Ok(G1),
        "IAS beyond OAS is fine at stage 1"
    );
}

fn map_without_read_or_write_maps_nothing(f: FormatKind) {
    for e in drive_configs(f) {
        let mut s = populated(&e);
        for bits in 0u8..64 {
            let prot = Prot::from_bits_truncate(bits);
            if prot.readable() || prot.writable() {
                continue;
            }
            for &pg in &e.page_sizes() {
                let free = e.ia_size() - 2 * pg;
                map_refused(
                    &mut s,
                    (free, 0, pg, 2, prot),
                    Ok(0),
                    "no r/w on free space",
                );
                map_refused(
                    &mut s,
                    (0, 0, pg, 1, prot),
                    Ok(0),
                    "no r/w over an existing leaf",
                );
            }
            assert_eq!(s.d.lookup(e.ia_size() - 1), None);
        }
    }
}

#[test]
fn map_exists_changes_nothing() {
    for e in sample() {
        let mut s = populated(&e);
        let small = s.small;
        let ex = map_err(Exists, 0);
        map_refused(&mut s, (0, 0, small, 1, Prot::RW), ex, "leaf at the slot");
        map_refused(
            &mut s,
            (2 * small, 0, small, 1, Prot::READ),
            ex,
            "leaf at the slot (last of the run)",
        );
        map_refused(
            &mut s,
            (0, 0x1000 * small, small, 3, Prot::RW),
            ex,
            "same run again",
        );
        if let Some(big) = s.big {
            map_refused(
                &mut s,
                (2 * big, 0, small, 1, Prot::RW),
                ex,
                "block covering the page",
            );
            map_refused(
                &mut s,
                (3 * big - small, 0, small, 1, Prot::RW),
                ex,
                "block covering the last page",
            );
            map_refused(
                &mut s,
                (2 * big, 0, big, 1, Prot::RW),
                ex,
                "block at the slot",
            );
            map_refused(
                &mut s,
                (4 * big, 0, big, 1, Prot::RW),
                ex,
                "table with a leaf at the slot",
            );
            map_refused(
                &mut s,
                (0, 0, big, 1, Prot::RW),
                ex,
                "table with leaves at the slot",
            );
        }
        check_against_model(&s.d, &s.m, "after exists");
    }
}

/// Every pair of page sizes (small < big): a big map over a table that holds a small leaf
/// somewhere below, and a small map under a big block, are `exists`.
#[test]
fn exists_for_every_pair_of_page_sizes() {
    for e in sample() {
        let sizes = e.page_sizes();
        for (i, &small) in sizes.iter().enumerate() {
            for &big in &sizes[i + 1..] {
                let mut d = domain_for(&e);
                // A small leaf in the last small slot of the second big slot.
                assert_eq!(d.map(2 * big - small, 0, small, 1, Prot::RW), Ok(small));
                // A big block in the third big slot.
                assert_eq!(d.map(2 * big, big, big, 1, Prot::RW), Ok(big));
                d.flush_ops_mut().events.clear();
                let before = snapshot(&d);
                let what = format!("{e:?} small {small:#x} big {big:#x}");
                assert_eq!(
                    d.map(big, 0, big, 1, Prot::RW),
                    map_err(Exists, 0),
                    "{what}: table with a leaf deep below"
                );
                assert_eq!(
                    d.map(2 * big + big / 2, 0, small, 1, Prot::RW),
                    map_err(Exists, 0),
                    "{what}: under a block"
                );
                assert_eq!(
                    d.map(3 * big - small, 0, small, 1, Prot::RW),
                    map_err(Exists, 0),
                    "{what}: under a block, last page"
                );
                assert_unchanged(&d, &before, &what);
            }
        }
    }
}

/// A stop after some pages: the error carries their bytes and they stay mapped.
#[test]
fn map_stops_midway_and_keeps_earlier_pages() {
    for e in sample() {
        let mut s = populated(&e);
        let small = s.small;
        // A leaf on the last page, and a 6-page map ending on it: 5 pages are mapped.
        let top = e.ia_size() - small;
        let (want, _) = s.m.map(top, 0, small, 1, Prot::RW);
        assert_eq!(s.d.map(top, 0, small, 1, Prot::RW), want);
        let start = top - 5 * small;
        let (want, _) = s.m.map(start, 0, small, 6, Prot::READ);
        assert_eq!(want, map_err(Exists, 5 * small));
        assert_eq!(
            s.d.map(start, 0, small, 6, Prot::READ),
            want,
            "{e:?}: run into a leaf"
        );
        check_against_model(&s.d, &s.m, "after a partial map");
        assert_eq!(s.d.lookup(start + 4 * small + 1), Some(4 * small + 1));
        if let Some(big) = s.big {
            // Small pages running into the block at 2*big.
            let start = 2 * big - 2 * small;
            let (want, _) = s.m.map(start, 0, small, 4, Prot::RW);
            assert_eq!(want, map_err(Exists, 2 * small));
            assert_eq!(
                s.d.map(start, 0, small, 4, Prot::RW),
                want,
                "{e:?}: run into a block"
            );
            // Big pages running into the table with a leaf at 4*big.
            let (want, _) = s.m.map(3 * big, 0, big, 2, Prot::RW);
            assert_eq!(want, map_err(Exists, big));
            assert_eq!(
                s.d.map(3 * big, 0, big, 2, Prot::RW),
                want,
                "{e:?}: run into a table with a leaf"
            );
            check_against_model(&s.d, &s.m, "after partial maps");
        }
    }
}

fn unmap_inval_and_range_change_nothing(f: FormatKind) {
    for e in drive_configs(f) {
        let mut s = populated(&e);
        let ia = e.ia_size();
        for &pg in &e.page_sizes() {
            unmap_refused(&mut s, (0, pg, 0), Err(Inval), "count 0");
            unmap_refused(&mut s, (ia, pg, 0), Err(Inval), "count 0 beats range");
            unmap_refused(&mut s, (pg / 2, pg, 1), Err(Inval), "misaligned");
            unmap_refused(&mut s, (8, pg, 1), Err(Inval), "misaligned by 8");
            unmap_refused(
                &mut s,
                (ia + pg / 2, pg, 1),
                Err(Inval),
                "misaligned beats range",
            );
            unmap_refused(&mut s, (ia, pg, 1), Err(Range), "iova = 2^IAS");
            unmap_refused(&mut s, (ia - pg, pg, 2), Err(Range), "one page beyond IAS");
            unmap_refused(
                &mut s,
                (0, pg, ia / pg + 1),
                Err(Range),
                "whole IAS + 1 page (leaves at 0)",
            );
            unmap_refused(
                &mut s,
                (0, pg, u64::MAX / pg + 1),
                Err(Range),
                "count * pgsize overflows",
            );
            unmap_refused(
                &mut s,
                (!(pg - 1), pg, 1),
                Err(Range),
                "iova + size overflows",
            );
            unmap_refused(&mut s, (1 << 63, pg, 1), Err(Range), "iova 2^63");
        }
        for &pg in CANDIDATE_PGSIZES
            .iter()
            .filter(|p| !e.page_sizes().contains(p))
        {
            unmap_refused(&mut s, (0, pg, 1), Err(Inval), "unsupported pgsize");
            unmap_refused(
                &mut s,
                (ia, pg, 1),
                Err(Inval),
                "unsupported pgsize beats range",
            );
        }
        check_against_model(&s.d, &s.m, "after refused unmaps");
    }
}

#[test]
fn unmap_stops_without_changing_what_it_did_not_reach() {
    for e in sample() {
        let mut s = populated(&e);
        let small = s.small;
        let top = e.ia_size() - small;
        unmap_refused(&mut s, (top, small, 1), Ok(0), "hole at the first page");
        unmap_refused(
            &mut s,
            (3 * small, small, 5),
            Ok(0),
            "hole right after the run",
        );
        if let Some(big) = s.big {
            unmap_refused(
                &mut s,
                (2 * big, small, 1),
                Ok(0),
                "block larger than pgsize",
            );
            unmap_refused(
                &mut s,
                (3 * big - small, small, 1),
                Ok(0),
                "block larger than pgsize (last page)",
            );
            unmap_refused(
                &mut s,
                (6 * big, big, 1),
                Ok(0),
                "slot holding an empty table is a hole",
            );
            unmap_refused(
                &mut s,
                (6 * big, small, 1),
                Ok(0),
                "hole inside an empty table",
            );
            unmap_refused(&mut s, (big, big, 1), Ok(0), "big hole");
        }
        check_against_model(&s.d, &s.m, "after stopped unmaps");
    }
}

#[test]
fn unmap_partial_bytes() {
    for e in sample() {
        let mut s = populated(&e);
        let small = s.small;
        let what = format!("{e:?}");
        // The run at 0 is 3 pages: a 5-page unmap stops at the hole after them.
        let (want, fx) = s.m.unmap(0, small, 5);
        assert_eq!(want, Ok(3 * small));
        assert_eq!(fx.removed.len(), 3);
        assert_eq!(s.d.unmap(0, small, 5), want, "{what}: stop at a hole");
        check_against_model(&s.d, &s.m, &what);
        if let Some(big) = s.big {
            // Two pages right below the block, then the block stops the unmap.
            let (want, _) = s.m.map(2 * big - 2 * small, 0, small, 2, Prot::RW);
            assert_eq!(s.d.map(2 * big - 2 * small, 0, small, 2, Prot::RW), want);
            let (want, _) = s.m.unmap(2 * big - 2 * small, small, 4);
            assert_eq!(want, Ok(2 * small));
            assert_eq!(
                s.d.unmap(2 * big - 2 * small, small, 4),
                want,
                "{what}: stop at a block"
            );
            assert_eq!(s.d.lookup(2 * big), Some(big), "{what}: the block stays");
            check_against_model(&s.d, &s.m, &what);
            // A big unmap over a slot holding a table with one small leaf: the leaf goes,
            // the whole big page is counted, and the table (its whole span went) is freed.
            let (want, fx) = s.m.unmap(4 * big, big, 1);
            assert_eq!(want, Ok(big));
            assert_eq!(fx.removed, vec![(4 * big + small, small)]);
            let before = s.d.counters();
            assert_eq!(
                s.d.unmap(4 * big, big, 1),
                want,
                "{what}: big unmap over small leaves"
            );
            assert_eq!(
                s.d.counters().deferred,
                before.deferred + fx.freed.len() as u64
            );
            check_against_model(&s.d, &s.m, &what);
            // Then the block itself, then a stop at the empty table slot.
            let (want, _) = s.m.unmap(2 * big, big, 5);
            assert_eq!(want, Ok(big));
            assert_eq!(s.d.unmap(2 * big, big, 5), want, "{what}: block then hole");
            check_against_model(&s.d, &s.m, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Invalid domains.

fn refused(cfg: DomainConfig) -> String {
    let err = Domain::new(cfg)
        .err()
        .unwrap_or_else(|| panic!("{cfg:?} accepted"));
    assert_eq!(err.kind(), Inval, "{cfg:?}");
    err.to_string()
}

fn refused_with(cfg: DomainConfig, custom: CustomAllocator) -> String {
    let err = Domain::with_flush(cfg, FlushLog::default(), Some(custom))
        .err()
        .unwrap_or_else(|| panic!("{cfg:?} accepted with a custom allocator"));
    assert_eq!(err.kind(), Inval, "{cfg:?}");
    err.to_string()
}

fn assert_mentions(msg: &str, words: &[&str]) {
    let low = msg.to_lowercase();
    for w in words {
        assert!(
            low.contains(&w.to_lowercase()),
            "message {msg:?} does not mention {w:?}"
        );
    }
}

#[test]
fn invalid_domains_are_refused_with_clear_messages() {
    for f in [Arm32LpaeS1, Arm32LpaeS2] {
        for g in [G16K, G64K] {
            assert_mentions(&refused(config(f, g, 32, 32)), &["granule", g.name()]);
        }
    }
    for f in FormatKind::ALL {
        let g = G4K;
        let oas = if matches!(f, Arm64S1 | Arm64S2) {
            48
        } else {
            40
        };
        for ias in [0, 31, 49, 64] {
            assert_mentions(&refused(config(f, g, ias, oas)), &["ias", &ias.to_string()]);
        }
        for bad_oas in [0, 31, 49] {
            let ias = 32;
            assert_mentions(
                &refused(config(f, g, ias, bad_oas)),
                &["oas", &bad_oas.to_string()],
            );
        }
    }
    assert_mentions(&refused(config(Arm32LpaeS1, G4K, 33, 40)), &["ias", "33"]);
    assert_mentions(&refused(config(Arm32LpaeS1, G4K, 31, 40)), &["ias", "31"]);
    assert_mentions(&refused(config(Arm32LpaeS1, G4K, 32, 41)), &["oas", "41"]);
    assert_mentions(&refused(config(Arm32LpaeS2, G4K, 41, 40)), &["ias", "41"]);
    // Stage 2: IAS must not exceed OAS.
    for (f, ias, oas) in [(Arm64S2, 48, 44), (Arm64S2, 33, 32), (Arm32LpaeS2, 40, 36)] {
        for g in if f == Arm64S2 {
            Granule::ALL.to_vec()
        } else {
            vec![G4K]
        } {
            let msg = refused(config(f, g, ias, oas));
            assert_mentions(&msg, &["ias", "oas", &ias.to_string(), &oas.to_string()]);
        }
    }
    // ... while stage 1 may have IAS > OAS.
    Domain::new(config(Arm64S1, G4K, 48, 32)).unwrap();
    Domain::new(config(Arm32LpaeS1, G4K, 32, 32)).unwrap();
    // No legal stage-2 start level.
    assert_mentions(
        &refused(config(Arm64S2, G16K, 41, 41)),
        &["start level", "41"],
    );
}

/// SEMANTICS "Memory and the allocator": phys_base must be a multiple of 16 granules and the
/// root must end at or below 2^OAS.
#[test]
fn invalid_placement_is_refused() {
    for g in Granule::ALL {
        let mut cfg = config(Arm64S1, g, 48, 48);
        cfg.phys_base = 0x4000_0000 + g.size();
        assert_mentions(&refused(cfg), &["phys_base"]);
        cfg.phys_base = 0x4000_0000 + 16 * g.size();
        Domain::new(cfg).unwrap();
    }
    let mut cfg = config(Arm64S1, G4K, 48, 32);
    cfg.phys_base = 1 << 32;
    assert_mentions(&refused(cfg), &["oas"]);
    cfg.phys_base = (1 << 32) - 16 * K4;
    Domain::new(cfg).unwrap();
    // A 16-table concatenated root (64K, IAS 33: 1 MiB) that would cross 2^32.
    let mut cfg = config(Arm64S2, G64K, 33, 33);
    cfg.phys_base = (1 << 33) - 16 * K64;
    Domain::new(cfg).unwrap();
    cfg.phys_base = 1 << 33;
    refused(cfg);
}

fn hooks(alloc: bool, free: bool) -> CustomAllocator {
    CustomAllocator {
        alloc: alloc
            .then(|| Box::new(|_cookie: u64, _size: u64| true) as Box<dyn FnMut(u64, u64) -> bool>),
        free: free.then(|| {
            Box::new(|_cookie: u64, _pa: u64, _size: u64| {}) as Box<dyn FnMut(u64, u64, u64)>
        }),
        cookie: 0x5eed,
    }
}

#[test]
fn custom_allocator_needs_both_hooks_and_a_capable_format() {
    for f in [Arm64S1, Arm64S2] {
        let cfg = config(f, G4K, 40, 40);
        assert_mentions(&refused_with(cfg, hooks(true, false)), &["both"]);
        assert_mentions(&refused_with(cfg, hooks(false, true)), &["both"]);
        Domain::with_flush(cfg, FlushLog::default(), Some(hooks(true, true))).unwrap();
        Domain::with_flush(cfg, FlushLog::default(), Some(hooks(false, false))).unwrap();
    }
    for f in [Arm32LpaeS1, Arm32LpaeS2] {
        let cfg = config(f, G4K, 32, 40);
        let msg = refused_with(cfg, hooks(true, true));
        assert_mentions(&msg, &["custom", f.name()]);
        // One hook only is refused too (whichever rule the message names).
        refused_with(cfg, hooks(true, false));
    }
}

// Per LPAE format (`arm64_s1::map_inval_changes_nothing`, ...): this file's model and walker are LPAE.
per_format!(lpae: [map_inval_changes_nothing, map_without_read_or_write_maps_nothing, unmap_inval_and_range_change_nothing]);
