use super::*;
use ptfuzz_engine::config::{FormatKind, Granule};

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::RW;

fn model(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Model {
    Model::new(&DomainConfig::new(f, g, ias, oas)).unwrap()
}

fn model_max(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Model {
    let mut cfg = DomainConfig::new(f, g, ias, oas);
    cfg.concat = ptfuzz_engine::config::Concat::Max;
    Model::new(&cfg).unwrap()
}

fn s1_4k() -> Model {
    model(FormatKind::Arm64S1, Granule::G4K, 48, 48)
}

fn err(kind: ErrorKind, mapped: u64) -> Result<u64, MapError> {
    Err(MapError::new(kind, mapped))
}

#[test]
fn design_example_trace() {
    let mut m = s1_4k();
    assert_eq!(m.map(0x200000, 0x4020_0000, M2, 1, RW), Ok(0x200000));
    assert_eq!(
        m.map(0x200000, 0x4000_0000, K4, 1, Prot::READ),
        err(ErrorKind::Exists, 0)
    );
    assert_eq!(m.lookup(0x201234), Some(0x4020_1234));
    assert_eq!(m.unmap(0x200000, K4, 1), Ok(0));
    assert_eq!(m.unmap(0x200000, M2, 1), Ok(0x200000));
    assert_eq!(m.lookup(0x201234), None);
    assert_eq!(m.leaves().count(), 0);
}

#[test]
fn new_refuses_what_semantics_refuses() {
    let bad = [
        DomainConfig::new(FormatKind::Arm64S2, Granule::G16K, 41, 41),
        DomainConfig::new(FormatKind::Arm32LpaeS1, Granule::G4K, 33, 40),
        DomainConfig::new(FormatKind::Arm64S2, Granule::G4K, 44, 40),
        DomainConfig {
            phys_base: 0x1000,
            ..DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48)
        },
        DomainConfig {
            concat: ptfuzz_engine::config::Concat::Max,
            ..DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48)
        },
    ];
    for cfg in bad {
        assert_eq!(Model::new(&cfg).err(), Some(ErrorKind::Inval), "{cfg:?}");
    }
    // Stage 2 starts where Linux does: 1G and 512M leaves at IAS 34 / 32 ...
    assert_eq!(
        model(FormatKind::Arm64S2, Granule::G4K, 34, 34).page_sizes(),
        [K4, M2, G1]
    );
    assert_eq!(
        model(FormatKind::Arm64S2, Granule::G64K, 32, 32).page_sizes(),
        [1 << 16, 1 << 29]
    );
    // ... and with concat=max one level deeper, without them.
    assert_eq!(
        model_max(FormatKind::Arm64S2, Granule::G4K, 34, 34).page_sizes(),
        [K4, M2]
    );
    assert_eq!(
        model_max(FormatKind::Arm64S2, Granule::G64K, 32, 32).page_sizes(),
        [1 << 16]
    );
}

#[test]
fn map_stops_at_exists_with_partial_count() {
    let mut m = s1_4k();
    assert_eq!(m.map(0x5000, 0x9000, K4, 1, RW), Ok(K4));
    // Pages 0..5 map, page 5 (0x5000) exists.
    assert_eq!(
        m.map(0x0, 0x10_0000, K4, 8, RW),
        err(ErrorKind::Exists, 5 * K4)
    );
    assert_eq!(m.lookup(0x4fff), Some(0x10_4fff));
    assert_eq!(m.lookup(0x5000), Some(0x9000)); // the old leaf is untouched
    assert_eq!(m.lookup(0x6000), None); // nothing after the stop
    assert_eq!(m.leaves().count(), 6);
    // A block over a range holding any leaf is refused at once.
    assert_eq!(m.map(0, 0x4000_0000, M2, 1, RW), err(ErrorKind::Exists, 0));
    // A small page under an existing block is refused.
    assert_eq!(m.map(M2, 0x4000_0000, M2, 1, RW), Ok(M2));
    assert_eq!(m.map(M2 + 0x3000, 0, K4, 1, RW), err(ErrorKind::Exists, 0));
    // A 1G block over the 2M block and the small pages is refused.
    assert_eq!(m.map(0, 0, G1, 1, RW), err(ErrorKind::Exists, 0));
    // Mapping right after the block works: adjacency is not overlap.
    assert_eq!(m.map(2 * M2, 0, K4, 1, RW), Ok(K4));
    assert_eq!(m.map(M2 - K4, 0, K4, 1, RW), Ok(K4));
}

#[test]
fn map_of_many_pages_is_fast_and_exact() {
    let mut m = s1_4k();
    assert_eq!(
        m.map(0x1_0000_0000, 0x8000_0000, K4, 65536, RW),
        Ok(65536 * K4)
    );
    assert_eq!(m.leaves().count(), 65536);
    assert_eq!(
        m.lookup(0x1_0000_0000 + 65535 * K4 + 7),
        Some(0x8000_0000 + 65535 * K4 + 7)
    );
    // A second overlapping map stops where the first began.
    assert_eq!(
        m.map(0x1_0000_0000 - 16 * K4, 0, K4, 65536, RW),
        err(ErrorKind::Exists, 16 * K4)
    );
    assert_eq!(
        m.unmap(0x1_0000_0000 - 16 * K4, K4, 65536 + 16),
        Ok((65536 + 16) * K4)
    );
    assert_eq!(m.leaves().count(), 0);
}

#[test]
fn unmap_stops_at_hole_and_at_larger_leaf() {
    let mut m = s1_4k();
    m.map(0, 0x10_0000, K4, 3, RW).unwrap();
    // Pages 0..3 unmap, page 3 is a hole: ok with 3 pages.
    assert_eq!(m.unmap(0, K4, 5), Ok(3 * K4));
    assert_eq!(m.leaves().count(), 0);
    // A hole at the first page: ok, 0.
    assert_eq!(m.unmap(0, K4, 1), Ok(0));

    m.map(0, 0, K4, 1, RW).unwrap();
    m.map(M2, 0x4000_0000, M2, 1, RW).unwrap();
    // 4K pages over the 2M block stop without splitting it.
    assert_eq!(m.unmap(0, K4, 1), Ok(K4));
    assert_eq!(m.unmap(M2, K4, 1), Ok(0));
    assert_eq!(m.unmap(M2 + 0x10_0000, K4, 1), Ok(0));
    assert_eq!(m.lookup(M2 + 0x10_0000), Some(0x4010_0000));
    // A 2M unmap over two 4K leaves with a hole between removes both and counts 2M.
    m.map(4 * M2, 0, K4, 1, RW).unwrap();
    m.map(4 * M2 + 0x1f_f000, 0, K4, 1, RW).unwrap();
    assert_eq!(m.unmap(4 * M2, M2, 1), Ok(M2));
    assert_eq!(m.lookup(4 * M2), None);
    assert_eq!(m.lookup(4 * M2 + 0x1f_f000), None);
    // A 1G unmap covering the 2M block removes it; the next 1G is a hole.
    assert_eq!(m.unmap(0, G1, 2), Ok(G1));
    assert_eq!(m.leaves().count(), 0);
}

#[test]
fn map_argument_errors_in_order() {
    let mut m = s1_4k();
    let top = 1u64 << 48;
    let inval = err(ErrorKind::Inval, 0);
    let range = err(ErrorKind::Range, 0);
    assert_eq!(m.map(0, 0, K4, 0, RW), inval);
    assert_eq!(m.map(0, 0, 0, 1, RW), inval);
    assert_eq!(m.map(0, 0, 8 * K4, 1, RW), inval);
    assert_eq!(m.map(0, 0, 1 << 39, 1, RW), inval); // 512G: not a leaf size
    assert_eq!(m.map(0x1000, 0, M2, 1, RW), inval);
    assert_eq!(m.map(0, 0x1000, M2, 1, RW), inval);
    // inval wins over range: count 0 beyond IAS, misaligned and overflowing.
    assert_eq!(m.map(top, 0, K4, 0, RW), inval);
    assert_eq!(m.map(top + 1, 0, K4, u64::MAX, RW), inval);
    // range: beyond IAS, beyond OAS, overflow of count*pgsize and of the ends.
    assert_eq!(m.map(top - K4, 0, K4, 2, RW), range);
    assert_eq!(m.map(top, 0, K4, 1, RW), range);
    assert_eq!(m.map(0, top - K4, K4, 2, RW), range);
    assert_eq!(m.map(0, 0, K4, u64::MAX, RW), range);
    assert_eq!(m.map(0, 0, G1, 1 << 34, RW), range);
    assert_eq!(m.map(!(K4 - 1), 0, K4, 1, RW), range);
    assert_eq!(m.map(0, !(K4 - 1), K4, 1, RW), range);
    // Range wins over the no-permission shortcut.
    assert_eq!(m.map(top, 0, K4, 1, Prot::EXEC), range);
    // Exactly up to 2^IAS and 2^OAS is fine.
    assert_eq!(m.map(top - K4, top - K4, K4, 1, RW), Ok(K4));
    // Neither r nor w: ok, nothing done (even over an existing leaf).
    assert_eq!(m.map(0, 0, K4, 4, Prot::EXEC | Prot::CACHE), Ok(0));
    assert_eq!(m.map(top - K4, 0, K4, 1, Prot::default()), Ok(0));
    assert_eq!(m.leaves().count(), 1);
    // Write-only is a real mapping.
    assert_eq!(m.map(0, 0, K4, 1, Prot::WRITE), Ok(K4));
}

#[test]
fn map_checks_oas_separately_from_ias() {
    let mut m = model(FormatKind::Arm64S1, Granule::G4K, 48, 36);
    assert_eq!(m.map(1 << 40, (1 << 36) - K4, K4, 1, RW), Ok(K4));
    assert_eq!(m.map(1 << 41, 1 << 36, K4, 1, RW), err(ErrorKind::Range, 0));
}

#[test]
fn unmap_argument_errors_in_order() {
    let mut m = s1_4k();
    let top = 1u64 << 48;
    assert_eq!(m.unmap(0, K4, 0), Err(ErrorKind::Inval));
    assert_eq!(m.unmap(0, 0, 1), Err(ErrorKind::Inval));
    assert_eq!(m.unmap(0, 3 * K4, 1), Err(ErrorKind::Inval));
    assert_eq!(m.unmap(0x1000, M2, 1), Err(ErrorKind::Inval));
    assert_eq!(m.unmap(top + 0x1000, M2, u64::MAX), Err(ErrorKind::Inval));
    assert_eq!(m.unmap(top, K4, 1), Err(ErrorKind::Range));
    assert_eq!(m.unmap(top - K4, K4, 2), Err(ErrorKind::Range));
    assert_eq!(m.unmap(0, K4, u64::MAX), Err(ErrorKind::Range));
    assert_eq!(m.unmap(!(K4 - 1), K4, 1), Err(ErrorKind::Range));
    assert_eq!(m.unmap(top - K4, K4, 1), Ok(0));
    // An unsupported size for this domain: stage 2 4K IAS 34 concat=max has no 1G.
    let mut s2 = model_max(FormatKind::Arm64S2, Granule::G4K, 34, 40);
    assert_eq!(s2.unmap(0, G1, 1), Err(ErrorKind::Inval));
    assert_eq!(s2.map(0, 0, G1, 1, RW), err(ErrorKind::Inval, 0));
}

#[test]
fn lookup_offsets_and_ias_limit() {
    let mut m = model(FormatKind::Arm64S1, Granule::G4K, 40, 48);
    let top = 1u64 << 40;
    m.map(M2, 0x8000_0000, M2, 1, RW).unwrap();
    m.map(G1, 0x1_4000_0000, G1, 1, Prot::READ).unwrap();
    m.map(top - K4, 0xabc_d000, K4, 1, RW).unwrap();
    assert_eq!(m.lookup(M2), Some(0x8000_0000));
    assert_eq!(m.lookup(M2 + 0x1f_ffff), Some(0x801f_ffff));
    assert_eq!(m.lookup(M2 - 1), None);
    assert_eq!(m.lookup(2 * M2), None);
    assert_eq!(m.lookup(G1 + 0x1234_5678), Some(0x1_5234_5678));
    assert_eq!(m.lookup(2 * G1 - 1), Some(0x1_7fff_ffff));
    assert_eq!(
        m.leaf_at(G1 + 0x1234_5678),
        Some((G1, 0x1_4000_0000, G1, Prot::READ))
    );
    assert_eq!(m.lookup(top - 1), Some(0xabc_dfff));
    for a in [top, top + 1, top + G1, 1 << 48, u64::MAX] {
        assert_eq!(m.lookup(a), None);
        assert_eq!(m.leaf_at(a), None);
    }
    let all: Vec<_> = m.leaves().collect();
    assert_eq!(
        all,
        [
            (M2, 0x8000_0000, M2, RW),
            (G1, 0x1_4000_0000, G1, Prot::READ),
            (top - K4, 0xabc_d000, K4, RW)
        ]
    );
    m.clear();
    assert_eq!(m.leaves().count(), 0);
    assert_eq!(m.lookup(M2), None);
    // After clear the space is free again.
    assert_eq!(m.map(0, 0, G1, 1, RW), Ok(G1));
}

#[test]
fn larger_granules() {
    let mut m = model(FormatKind::Arm64S2, Granule::G64K, 34, 48);
    let (k64, m512) = (1u64 << 16, 1u64 << 29);
    assert_eq!(m.page_sizes(), [k64, m512]);
    assert_eq!(m.map(m512, 0, m512, 1, RW), Ok(m512));
    assert_eq!(m.map(m512 + k64, 0, k64, 1, RW), err(ErrorKind::Exists, 0));
    assert_eq!(m.lookup(m512 + 0x123_4567), Some(0x123_4567));
    assert_eq!(m.unmap(m512, k64, 1), Ok(0));
    assert_eq!(m.unmap(m512, m512, 2), Ok(m512));
    assert_eq!(m.map(31 * m512, 0, m512, 1, RW), Ok(m512));
    assert_eq!(m.map(32 * m512, 0, m512, 1, RW), err(ErrorKind::Range, 0));
}

/// armv7s level-2 tables are 1 KiB, `hostpage / 1 KiB` to a host page; the 16 KiB first
/// level has its page(s) to itself (SEMANTICS.md "Armv7 short descriptor", table memory).
/// In a 64 KiB window below 2^32: 48 tables with 4K pages and 16K pages, and with 64K
/// pages in a 128 KiB window, 64.
#[test]
fn armv7s_level_two_tables_pack_into_host_pages() {
    const M1: u64 = 1 << 20;
    for (page, base, tables, backed) in [
        (Granule::G4K, 0xffff_0000, 48, 16),
        (Granule::G16K, 0xffff_0000, 48, 4),
        (Granule::G64K, 0xfffe_0000, 64, 2),
    ] {
        let cfg = DomainConfig {
            phys_base: base,
            host_page: Some(page),
            ..DomainConfig::new(FormatKind::Armv7s, Granule::G4K, 32, 32)
        };
        let mut m = Model::new(&cfg).unwrap();
        let root = m.backed_frames();
        for i in 0..tables {
            assert_eq!(m.map(i * M1, 0, K4, 1, RW), Ok(K4), "{page} table {i}");
        }
        assert_eq!(m.backed_frames(), backed, "{page}: root {root} pages");
        assert_eq!(
            m.map(tables * M1, 0, K4, 1, RW),
            err(ErrorKind::Nomem, 0),
            "{page}: no room for table {tables}"
        );
        assert_eq!(m.counters().live, tables + 1, "{page}");
    }
}
