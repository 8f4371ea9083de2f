//! Domain geometry: which configurations are domains, start levels, root sizes, stage-2
//! concatenation and page sizes, checked against ARM-FACTS §2/§3 and SEMANTICS "Domains".

mod common;

use common::*;
use ptfuzz_engine::{
    Concat, Domain, ErrorKind, FlushLog, FormatKind, FrameState, Granule, MapError, Prot,
};

use FormatKind::*;
use Granule::*;

/// Checks the shape of a freshly created domain against `e`.
fn assert_shape(e: &Expect) {
    let d = domain_for(e);
    let what = format!("{e:?}");
    let geo = d.geometry();
    assert_eq!(geo.start_level, e.start, "{what}: start level");
    assert_eq!(
        1u64 << geo.root_bits,
        e.root_entries,
        "{what}: root entries"
    );
    assert_eq!(d.page_sizes(), e.page_sizes(), "{what}: page sizes");

    let root = d.root();
    let n = e.root_tables();
    let gsz = e.granule_size();
    assert_eq!(
        root % (n * gsz),
        0,
        "{what}: root {root:#x} not aligned to its {n} frames"
    );
    assert!(root >= d.config().phys_base, "{what}: root below phys_base");
    let m = d.tables().meta(root).expect("root has metadata");
    assert_eq!(m.state, FrameState::Live, "{what}: root state");
    assert_eq!(m.level as u32, e.start, "{what}: root level");
    assert_eq!(
        m.frames as u64, n,
        "{what}: root frames (concatenated tables)"
    );
    // The whole root is backed and empty.
    for i in 0..e.root_entries.max(gsz / 8) {
        assert_eq!(
            dev_word(&d, root + 8 * i),
            0,
            "{what}: root word {i} not zero"
        );
    }
    let c = d.counters();
    assert_eq!(
        (c.allocated, c.live, c.deferred, c.freed),
        (1, 1, 0, 0),
        "{what}: counters"
    );
}

#[test]
fn every_configuration_is_accepted_or_refused_as_documented() {
    let sizes = [
        0, 1, 12, 31, 32, 33, 36, 39, 40, 41, 42, 44, 47, 48, 49, 52, 63, 64, 200,
    ];
    let mut accepted = 0;
    for f in FormatKind::ALL {
        for g in Granule::ALL {
            for ias in sizes.into_iter().chain(32..=48) {
                for oas in sizes.into_iter().chain(32..=48) {
                    let cfg = config(f, g, ias, oas);
                    let got = Domain::new(cfg);
                    match expected(f, g, ias, oas) {
                        Some(_) => {
                            accepted += 1;
                            if let Err(err) = got {
                                panic!("{cfg:?} refused: {err}");
                            }
                        }
                        None => {
                            let err = got.err().unwrap_or_else(|| panic!("{cfg:?} accepted"));
                            assert_eq!(err.kind(), ErrorKind::Inval, "{cfg:?}");
                            assert!(!err.to_string().is_empty());
                        }
                    }
                }
            }
        }
    }
    assert!(accepted > 1000);
}

#[test]
fn shape_of_every_valid_configuration() {
    for e in all_valid() {
        assert_shape(&e);
    }
}

/// ARM-FACTS §2, row by row, as literal root sizes.
#[test]
fn stage1_start_levels_match_arm_facts_table() {
    let rows: &[(Granule, std::ops::RangeInclusive<u32>, u32, &[u64])] = &[
        (G4K, 32..=39, 1, &[4, 8, 16, 32, 64, 128, 256, 512]),
        (G4K, 40..=48, 0, &[2, 4, 8, 16, 32, 64, 128, 256, 512]),
        (G16K, 32..=36, 2, &[128, 256, 512, 1024, 2048]),
        (
            G16K,
            37..=47,
            1,
            &[2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
        ),
        (G16K, 48..=48, 0, &[2]),
        (
            G64K,
            32..=42,
            2,
            &[8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
        ),
        (G64K, 43..=48, 1, &[2, 4, 8, 16, 32, 64]),
    ];
    for (g, range, start, entries) in rows {
        assert_eq!(range.clone().count(), entries.len());
        for (ias, &n) in range.clone().zip(entries.iter()) {
            for oas in [32, ias, 48] {
                let d = domain(config(Arm64S1, *g, ias, oas));
                assert_eq!(d.geometry().start_level, *start, "{g} IAS {ias} OAS {oas}");
                assert_eq!(1u64 << d.geometry().root_bits, n, "{g} IAS {ias} OAS {oas}");
                let m = d.tables().meta(d.root()).unwrap();
                assert_eq!(m.frames, 1, "a stage-1 root is never concatenated");
            }
        }
    }
}

/// SEMANTICS "Stage 2 start level" examples of the default policy: Linux's results for IAS =
/// OAS (ARM-FACTS §3) and the PA-size cases with IAS < OAS.
#[test]
fn stage2_default_follows_linux() {
    // (granule, ias, oas, start, root entries, concatenated tables)
    let rows = [
        (G4K, 32, 32, 1, 4, 1),
        (G4K, 32, 48, 1, 4, 1),
        (G4K, 36, 36, 1, 64, 1),
        (G4K, 40, 40, 1, 1024, 2),
        (G4K, 40, 44, 0, 2, 1),
        (G4K, 42, 42, 1, 4096, 8),
        (G4K, 43, 43, 1, 8192, 16),
        (G4K, 44, 44, 0, 32, 1),
        (G4K, 48, 48, 0, 512, 1),
        (G16K, 32, 32, 2, 128, 1),
        (G16K, 36, 36, 2, 2048, 1),
        (G16K, 37, 41, 2, 4096, 2),
        (G16K, 37, 42, 1, 2, 1),
        (G16K, 40, 40, 2, 32768, 16),
        (G16K, 40, 42, 1, 16, 1),
        (G16K, 42, 42, 1, 64, 1),
        (G16K, 44, 44, 1, 256, 1),
        (G16K, 48, 48, 1, 4096, 2),
        (G64K, 32, 32, 2, 8, 1),
        (G64K, 36, 36, 2, 128, 1),
        (G64K, 40, 40, 2, 2048, 1),
        (G64K, 42, 42, 2, 8192, 1),
        (G64K, 43, 43, 2, 16384, 2),
        (G64K, 43, 44, 1, 2, 1),
        (G64K, 44, 44, 1, 4, 1),
        (G64K, 48, 48, 1, 64, 1),
    ];
    for (g, ias, oas, start, entries, tables) in rows {
        let d = domain(config(Arm64S2, g, ias, oas));
        let what = format!("arm64-s2 {g} IAS {ias} OAS {oas}");
        assert_eq!(d.geometry().start_level, start, "{what}: start");
        assert_eq!(1u64 << d.geometry().root_bits, entries, "{what}: entries");
        assert_eq!(
            d.tables().meta(d.root()).unwrap().frames as u64,
            tables,
            "{what}: tables"
        );
        assert_eq!(d.root() % (tables * g.size()), 0, "{what}: root alignment");
    }
}

/// `concat=max`: SEMANTICS "Stage 2 start level" examples, and the concatenated rows of
/// ARM-FACTS §3.
#[test]
fn stage2_concat_max_documented_examples() {
    // (granule, ias, oas, start, root entries, concatenated tables)
    let rows = [
        (G4K, 32, 48, 2, 2048, 4),
        (G4K, 33, 48, 2, 4096, 8),
        (G4K, 34, 48, 2, 8192, 16),
        (G4K, 35, 48, 1, 32, 1),
        (G4K, 39, 48, 1, 512, 1),
        (G4K, 40, 48, 1, 1024, 2),
        (G4K, 40, 40, 1, 1024, 2),
        (G4K, 43, 48, 1, 8192, 16),
        (G4K, 44, 44, 0, 32, 1),
        (G4K, 48, 48, 0, 512, 1),
        (G16K, 32, 48, 2, 128, 1),
        (G16K, 36, 36, 2, 2048, 1),
        (G16K, 37, 48, 2, 4096, 2),
        (G16K, 40, 40, 2, 32768, 16),
        (G16K, 41, 48, 1, 32, 1),
        (G16K, 47, 48, 1, 2048, 1),
        (G16K, 48, 48, 1, 4096, 2),
        (G64K, 32, 48, 3, 65536, 8),
        (G64K, 33, 48, 3, 131072, 16),
        (G64K, 34, 48, 2, 32, 1),
        (G64K, 42, 42, 2, 8192, 1),
        (G64K, 43, 48, 2, 16384, 2),
        (G64K, 46, 48, 2, 131072, 16),
        (G64K, 47, 48, 1, 32, 1),
        (G64K, 48, 48, 1, 64, 1),
    ];
    for (g, ias, oas, start, entries, tables) in rows {
        let mut cfg = config(Arm64S2, g, ias, oas);
        cfg.concat = Concat::Max;
        let d = domain(cfg);
        let what = format!("arm64-s2 {g} IAS {ias} OAS {oas} concat=max");
        assert_eq!(d.geometry().start_level, start, "{what}: start");
        assert_eq!(1u64 << d.geometry().root_bits, entries, "{what}: entries");
        assert_eq!(
            d.tables().meta(d.root()).unwrap().frames as u64,
            tables,
            "{what}: tables"
        );
        assert_eq!(d.root() % (tables * g.size()), 0, "{what}: root alignment");
    }
    // A stage-1 domain has no concatenation to choose.
    let mut cfg = config(Arm64S1, G4K, 48, 48);
    cfg.concat = Concat::Max;
    assert!(Domain::new(cfg).is_err());
}

/// ARM-FACTS §8: Armv7 LPAE stage 1 starts at L1 with 4 entries (IA 32); stage 2 starts at
/// L1 (as Linux; IA 40 = 2 tables since the arm32 VTCR has no L0), and with `concat=max` at
/// L2 for IA 32..34 (4/8/16 concatenated tables) and at L1 for 35..40.
#[test]
fn arm32_lpae_geometry() {
    for oas in 32..=40 {
        let d = domain(config(Arm32LpaeS1, G4K, 32, oas));
        assert_eq!(d.geometry().start_level, 1);
        assert_eq!(d.geometry().root_bits, 2);
        assert_eq!(d.page_sizes(), vec![K4, M2, G1]);
    }
    let rows = [
        (Concat::Max, 32, 2, 2048, 4),
        (Concat::Max, 33, 2, 4096, 8),
        (Concat::Max, 34, 2, 8192, 16),
        (Concat::Max, 35, 1, 32, 1),
        (Concat::Max, 39, 1, 512, 1),
        (Concat::Max, 40, 1, 1024, 2),
        (Concat::Required, 32, 1, 4, 1),
        (Concat::Required, 34, 1, 16, 1),
        (Concat::Required, 39, 1, 512, 1),
        (Concat::Required, 40, 1, 1024, 2),
    ];
    for (concat, ias, start, entries, tables) in rows {
        let mut cfg = config(Arm32LpaeS2, G4K, ias, 40);
        cfg.concat = concat;
        let d = domain(cfg);
        assert_eq!(d.geometry().start_level, start, "IAS {ias}");
        assert_eq!(1u64 << d.geometry().root_bits, entries, "IAS {ias}");
        assert_eq!(
            d.tables().meta(d.root()).unwrap().frames as u64,
            tables,
            "IAS {ias}"
        );
        let sizes = if start == 2 {
            vec![K4, M2]
        } else {
            vec![K4, M2, G1]
        };
        assert_eq!(d.page_sizes(), sizes, "IAS {ias}");
    }
}

/// The PA-size rule (R_SRKBC) at its edges, with PS = OAS itself (SEMANTICS rule 3): the one
/// stage-2 configuration with IAS <= OAS left without a legal start level is 16K, IAS 41,
/// OAS 41 (L1 is the only level resolving 41 bits, and it needs PS >= 42).
#[test]
fn stage2_pa_size_rule_and_no_legal_start_level() {
    let d = domain(config(Arm64S2, G4K, 44, 44));
    assert_eq!(d.geometry().start_level, 0, "4K L0 with PS 44");
    let d = domain(config(Arm64S2, G64K, 47, 47));
    assert_eq!(d.geometry().start_level, 1, "64K L1 with PS 47 >= 44");
    let d = domain(config(Arm64S2, G16K, 41, 42));
    assert_eq!(d.geometry().start_level, 1, "16K L1 with PS 42");
    assert_eq!(1u64 << d.geometry().root_bits, 32);

    let err = Domain::new(config(Arm64S2, G16K, 41, 41))
        .err()
        .expect("16K IAS 41 OAS 41 accepted");
    assert_eq!(err.kind(), ErrorKind::Inval);
    let msg = err.to_string();
    assert!(
        msg.contains("start level") && msg.contains("41"),
        "unclear message: {msg}"
    );

    for f in [Arm64S2, Arm32LpaeS2] {
        for g in Granule::ALL {
            let (lo, hi) = if f == Arm64S2 { (32, 48) } else { (32, 40) };
            if f == Arm32LpaeS2 && g != G4K {
                continue;
            }
            for ias in lo..=hi {
                for oas in ias..=hi {
                    let got = Domain::new(config(f, g, ias, oas));
                    if (f, g, ias, oas) == (Arm64S2, G16K, 41, 41) {
                        assert!(got.is_err());
                        continue;
                    }
                    let e = expected(f, g, ias, oas)
                        .unwrap_or_else(|| panic!("{f} {g} {ias}/{oas}: no start level"));
                    let resolved = ias - e.shift(e.start);
                    assert!((1..=e.s() + 4).contains(&resolved));
                    got.unwrap_or_else(|err| panic!("{e:?}: {err}"));
                }
            }
        }
    }
}

/// SEMANTICS "Page sizes": every level at or below the start level where the granule allows
/// a leaf; every other size is `inval` for map and unmap.
#[test]
fn page_sizes_and_unsupported_sizes() {
    for e in all_ias() {
        let mut d = domain_for(&e);
        let sizes = e.page_sizes();
        assert_eq!(d.page_sizes(), sizes, "{e:?}");
        for &pg in &CANDIDATE_PGSIZES {
            if sizes.contains(&pg) {
                continue;
            }
            let before = snapshot(&d);
            assert_eq!(
                d.map(0, 0, pg, 1, Prot::RW),
                Err(MapError::new(ErrorKind::Inval, 0)),
                "{e:?}: map pgsize {pg:#x}"
            );
            assert_eq!(
                d.unmap(0, pg, 1),
                Err(ErrorKind::Inval),
                "{e:?}: unmap pgsize {pg:#x}"
            );
            assert_unchanged(&d, &before, "unsupported pgsize");
        }
        for &pg in &sizes {
            assert_eq!(
                d.map(0, 0, pg, 1, Prot::RW),
                Ok(pg),
                "{e:?}: map pgsize {pg:#x}"
            );
            assert_eq!(translate(&d, &e, pg - 1), Some(pg - 1));
            assert_eq!(d.unmap(0, pg, 1), Ok(pg), "{e:?}: unmap pgsize {pg:#x}");
        }
    }
}

/// The root holds exactly `root_entries` entries: the last page below 2^IAS is reached
/// through the last root entry, and a root smaller than a granule leaves the rest of its
/// frame untouched. Concatenated roots: table k of the root holds entries k*2^s...
#[test]
fn root_entries_are_used_exactly() {
    for e in all_ias() {
        let mut d = domain_for(&e);
        let pg = e.page_sizes()[0];
        let top = e.ia_size() - pg;
        assert_eq!(d.map(top, pg, pg, 1, Prot::READ), Ok(pg));
        assert_eq!(d.map(0, 0, pg, 1, Prot::READ), Ok(pg));
        let (steps, leaf) = walk(&d, &e, top);
        assert!(leaf.is_some(), "{e:?}: top page not found by the walker");
        assert_eq!(steps[0].index, e.root_entries - 1, "{e:?}");
        let last_slot = d.root() + 8 * (e.root_entries - 1);
        assert_eq!(steps[0].slot, last_slot);
        // Slot k*2^s of the flat root array is the first word of frame k.
        assert_eq!(
            (last_slot - d.root()) / e.granule_size(),
            e.root_tables() - 1,
            "{e:?}: last root entry in the last concatenated table"
        );
        let (steps0, _) = walk(&d, &e, 0);
        assert_eq!(steps0[0].slot, d.root());
        // Words past the root's entries, up to the end of its frame, stay zero.
        for i in e.root_entries..e.granule_size() / 8 {
            assert_eq!(
                dev_word(&d, d.root() + 8 * i),
                0,
                "{e:?}: word {i} past the root"
            );
        }
        // Every populated root slot is one of the two we used.
        let used = (0..e.root_entries)
            .filter(|&i| dev_word(&d, d.root() + 8 * i) != 0)
            .count();
        assert_eq!(used, 2, "{e:?}: root slots in use");
        assert_eq!(d.lookup(top + pg - 1), Some(2 * pg - 1));
        assert_eq!(d.lookup(e.ia_size()), None);
    }
}

/// Each of the concatenated root tables is used for its own slice of the input range.
#[test]
fn every_concatenated_root_table_is_reached() {
    for e in all_ias().into_iter().filter(|e| e.root_tables() > 1) {
        let mut d = domain_for(&e);
        let pg = e.page_sizes()[0];
        let slice = e.ia_size() / e.root_tables();
        for k in 0..e.root_tables() {
            let iova = k * slice + pg * k; // a different slot in every table
            assert_eq!(d.map(iova, k * pg, pg, 1, Prot::RW), Ok(pg));
            let (steps, leaf) = walk(&d, &e, iova);
            assert!(leaf.is_some());
            let frame = d.root() + k * e.granule_size();
            assert!(
                steps[0].slot >= frame && steps[0].slot < frame + e.granule_size(),
                "{e:?}: iova {iova:#x} should be in root table {k}"
            );
            assert_eq!(d.lookup(iova + 5), Some(k * pg + 5));
        }
        check_structure(&d, &e);
    }
}

/// Tables live in granule frames from `phys_base` upwards; a concatenated root is aligned
/// to its total size for any 16-granule-aligned base.
#[test]
fn tables_live_above_phys_base() {
    for (f, g, ias, base) in [
        (Arm64S1, G4K, 48, 0x8000_0000u64),
        (Arm64S2, G4K, 34, 0x1_0000_0000),
        (Arm64S2, G64K, 33, 0x4000_0000 + 16 * K64),
        (Arm64S2, G16K, 40, 0x2000_0000 + 16 * K16),
        (Arm32LpaeS2, G4K, 34, 0x8000_0000 + 16 * K4),
    ] {
        let mut cfg = config(f, g, ias, if f == Arm32LpaeS2 { 40 } else { 48 });
        cfg.phys_base = base;
        let e = expect_of(&cfg);
        let mut d = Domain::with_flush(cfg, FlushLog::default(), None).unwrap();
        assert_eq!(d.root(), base, "{cfg:?}: root is the first frame");
        assert_eq!(d.root() % (e.root_tables() * g.size()), 0);
        let pg = e.page_sizes()[0];
        assert_eq!(d.map(0, 0, pg, 3, Prot::RW), Ok(3 * pg));
        assert_eq!(d.map(e.ia_size() - pg, 0, pg, 1, Prot::RW), Ok(pg));
        let (tables, _) = check_structure(&d, &e);
        for t in tables {
            assert!(
                t.pa >= base && t.pa % g.size() == 0,
                "{cfg:?}: table {:#x}",
                t.pa
            );
        }
    }
}
