//! Armv7 short-descriptor domains (`armv7s`): sizes, repeated leaves, the level-1/level-2
//! boundary, partial unmaps, and the descriptor bytes, read back from the device view with
//! bit masks written from ARM-FACTS.md §8 (not with the engine's format code).

use ptfuzz_engine::{Domain, DomainConfig, ErrorKind, FormatKind, Granule, Prot};

const K4: u64 = 1 << 12;
const K64: u64 = 1 << 16;
const M1: u64 = 1 << 20;
const M16: u64 = 1 << 24;

fn domain() -> Domain {
    Domain::new(DomainConfig::new(FormatKind::Armv7s, Granule::G4K, 32, 32)).unwrap()
}

/// The 32-bit word at `pa`, from the device view.
fn word(d: &Domain, pa: u64) -> u32 {
    let w = d.mem().read_device(pa & !7).unwrap();
    (w >> (8 * (pa & 4))) as u32
}

fn l1(d: &Domain, iova: u64) -> u32 {
    word(d, d.root() + 4 * (iova >> 20))
}

fn l2(d: &Domain, iova: u64) -> u32 {
    let t = l1(d, iova);
    assert_eq!(t & 3, 1, "a page-table descriptor at L1 for {iova:#x}");
    word(d, (t & 0xffff_fc00) as u64 + 4 * ((iova >> 12) & 0xff))
}

#[test]
fn refuses_what_the_format_lacks() {
    for (g, ias, oas) in [
        (Granule::G16K, 32, 32),
        (Granule::G4K, 33, 32),
        (Granule::G4K, 32, 40),
        (Granule::G4K, 31, 32),
    ] {
        let e = Domain::new(DomainConfig::new(FormatKind::Armv7s, g, ias, oas));
        assert_eq!(
            e.err().map(|e| e.kind()),
            Some(ErrorKind::Inval),
            "{g} {ias} {oas}"
        );
    }
    let d = domain();
    assert_eq!(d.page_sizes(), vec![K4, K64, M1, M16]);
    assert_eq!(
        d.geometry().root_frames(),
        16,
        "16 KiB first level in 1 KiB units"
    );
    assert_eq!(d.root() % (16 << 10), 0, "first level aligned to 16 KiB");
}

#[test]
fn sections_and_supersections_are_level_one_leaves() {
    let mut d = domain();
    assert_eq!(d.map(0x0010_0000, 0x8010_0000, M1, 1, Prot::RW), Ok(M1));
    let s = l1(&d, 0x0010_0000);
    assert_eq!(s & 3, 0b10, "section type");
    assert_eq!(s & (1 << 18), 0, "not a supersection");
    assert_eq!(s & 0xfff0_0000, 0x8010_0000);
    assert_eq!(d.map(0x0100_0000, 0x8100_0000, M16, 1, Prot::READ), Ok(M16));
    let first = l1(&d, 0x0100_0000);
    assert_ne!(first & (1 << 18), 0, "supersection bit");
    for i in 0..16 {
        assert_eq!(
            l1(&d, 0x0100_0000 + i * M1),
            first,
            "slot {i} repeats the descriptor"
        );
    }
    assert_eq!(l1(&d, 0x0200_0000), 0, "nothing past the 16 slots");
    assert_eq!(d.lookup(0x01ab_cdef), Some(0x81ab_cdef));
    assert_eq!(d.lookup(0x0012_3456), Some(0x8012_3456));
    // A section inside the supersection exists; a 1M unmap there stops (no splitting).
    assert_eq!(
        d.map(0x0150_0000, 0x9000_0000, M1, 1, Prot::RW)
            .map_err(|e| e.kind),
        Err(ErrorKind::Exists)
    );
    assert_eq!(d.unmap(0x0150_0000, M1, 1), Ok(0));
    assert_eq!(d.unmap(0x0100_0000, M16, 1), Ok(M16));
    for i in 0..16 {
        assert_eq!(l1(&d, 0x0100_0000 + i * M1), 0);
    }
}

#[test]
fn large_pages_repeat_over_sixteen_level_two_slots() {
    let mut d = domain();
    assert_eq!(
        d.map(0x0031_0000, 0x8031_0000, K64, 2, Prot::RW),
        Ok(2 * K64)
    );
    let lp = l2(&d, 0x0031_0000);
    assert_eq!(lp & 3, 0b01, "large page type");
    assert_eq!(lp & 0xffff_0000, 0x8031_0000);
    for i in 0..16 {
        assert_eq!(l2(&d, 0x0031_0000 + i * K4), lp);
    }
    assert_eq!(l2(&d, 0x0032_0000) & 0xffff_0000, 0x8032_0000);
    assert_eq!(d.lookup(0x0031_fffc), Some(0x8031_fffc));
    // A small unmap hitting a large page stops; a small map into it exists.
    assert_eq!(d.unmap(0x0031_3000, K4, 1), Ok(0));
    assert_eq!(
        d.map(0x0031_3000, 0x9000_0000, K4, 1, Prot::RW)
            .map_err(|e| e.kind),
        Err(ErrorKind::Exists)
    );
    // A 64K unmap removes one large page; the second one stays.
    assert_eq!(d.unmap(0x0031_0000, K64, 1), Ok(K64));
    assert_eq!(d.lookup(0x0031_0000), None);
    assert_eq!(d.lookup(0x0032_0000), Some(0x8032_0000));
    // Sixteen small pages unmap as one 64K page; a hole stops a 64K unmap.
    assert_eq!(d.map(0x0034_0000, 0x8034_0000, K4, 16, Prot::RW), Ok(K64));
    assert_eq!(d.unmap(0x0034_0000, K64, 2), Ok(K64));
}

#[test]
fn small_pages_sit_in_second_level_tables_across_the_boundary() {
    let mut d = domain();
    // Two pages either side of a 1M boundary: two level-2 tables.
    let before = d.counters().live;
    assert_eq!(
        d.map(0x000f_f000, 0x8000_0000, K4, 2, Prot::READ),
        Ok(2 * K4)
    );
    assert_eq!(d.counters().live, before + 2);
    let p = l2(&d, 0x000f_f000);
    assert_eq!(p & 3, 0b11, "small page, XN (no x)");
    assert_eq!(p & 0xffff_f000, 0x8000_0000);
    assert_ne!(p & (1 << 9), 0, "read-only: AP[2]");
    assert_eq!(d.lookup(0x0010_0abc), Some(0x8000_1abc));
    // A section over a table with a page: exists; unmapping the page empties it, a
    // 1M unmap over the table's whole span frees it.
    assert_eq!(
        d.map(0x0010_0000, 0x9000_0000, M1, 1, Prot::RW)
            .map_err(|e| e.kind),
        Err(ErrorKind::Exists)
    );
    assert_eq!(d.unmap(0x000f_f000, K4, 2), Ok(2 * K4));
    // The emptied tables stay until a section replaces one.
    assert_eq!(d.map(0x0010_0000, 0x9000_0000, M1, 1, Prot::RW), Ok(M1));
    assert_eq!(d.counters().deferred, 1);
    assert_eq!(l1(&d, 0x0010_0000) & 3, 0b10);
}

/// Four 1 KiB level-2 tables share one 4K host page (the root takes four); a fifth starts a
/// second page; a slot freed by the grace period is the next one reused.
#[test]
fn level_two_tables_pack_four_to_a_host_page() {
    let mut d = domain();
    assert_eq!(d.mem().frames(), 4, "the 16 KiB first level");
    let tables: Vec<u64> = (0..4)
        .map(|i| {
            assert_eq!(d.map(i * M1, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
            (l1(&d, i * M1) & 0xffff_fc00) as u64
        })
        .collect();
    assert_eq!(d.mem().frames(), 5, "four level-2 tables in one page");
    for (i, t) in tables.iter().enumerate() {
        assert_eq!(
            t & !0xfff,
            tables[0] & !0xfff,
            "table {i} in the first page"
        );
    }
    let mut sorted = tables.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "four distinct slots: {tables:x?}");
    assert_eq!(d.map(4 * M1, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(d.mem().frames(), 6, "a fifth table takes a second page");
    // Unmapping table 1's whole 1M span frees it after the grace period.
    assert_eq!(d.unmap(M1, M1, 1), Ok(M1));
    d.grace_period();
    assert_eq!(d.counters().freed, 1);
    assert_eq!(d.map(7 * M1, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(
        (l1(&d, 7 * M1) & 0xffff_fc00) as u64,
        tables[1],
        "the freed slot is reused"
    );
    assert_eq!(d.mem().frames(), 6);
}
