//! Sub-page tables (issue 16): 4K tables packed into 16K and 64K host pages, a page given
//! back only when all its tables are past the grace period, custom hooks counting host pages,
//! and the default (host page = granule) unchanged.

use std::cell::Cell;
use std::rc::Rc;

use ptfuzz_engine::alloc::{PageState, POISON};
use ptfuzz_engine::{
    CustomAllocator, Domain, DomainConfig, FormatKind, Granule, NullFlush, Prot, DEFAULT_PHYS_BASE,
};

const K4: u64 = 0x1000;

fn cfg(host: Option<Granule>) -> DomainConfig {
    let mut c = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    c.host_page = host;
    c
}

fn tables(d: &Domain) -> Vec<u64> {
    let mut v: Vec<u64> = d.tables().live_tables().map(|(pa, _)| pa).collect();
    v.sort_unstable();
    v
}

/// Maps one 4K page under L0 entry `i` (three new tables: L1, L2, L3).
fn map_region(d: &mut Domain, i: u64) {
    let iova = i << 39;
    assert_eq!(d.map(iova, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
}

#[test]
fn tables_pack_four_to_a_16k_page_next_to_the_root() {
    let mut d = Domain::new(cfg(Some(Granule::G16K))).unwrap();
    assert_eq!(d.root(), DEFAULT_PHYS_BASE);
    map_region(&mut d, 0);
    let b = DEFAULT_PHYS_BASE;
    assert_eq!(tables(&d), [b, b + K4, b + 2 * K4, b + 3 * K4]);
    assert_eq!(
        d.mem().frames(),
        1,
        "one 16K host page holds root and three tables"
    );
    map_region(&mut d, 1);
    assert_eq!(d.mem().frames(), 2);
    let c = d.counters();
    assert_eq!((c.live, c.pages, c.pages_taken), (7, 2, 2));
    let page = d.tables().page(b + 0x4000).unwrap();
    assert_eq!(page.state, PageState::Carved);
    assert_eq!((page.used, page.free_mask), (3, 0b1000));
}

#[test]
fn a_page_returns_only_when_all_its_tables_are_past_the_grace_period() {
    let mut d = Domain::new(cfg(Some(Granule::G64K))).unwrap();
    // Root page (64K): root + 15 slots. Region 0 takes three of them; L3 tables for more
    // 2M spans take the rest, then a second page is carved.
    for k in 0..13 {
        let iova = k * 0x20_0000;
        assert_eq!(d.map(iova, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
    }
    assert_eq!(d.counters().live, 16);
    assert_eq!(d.mem().frames(), 1);
    assert_eq!(d.map(13 * 0x20_0000, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(d.mem().frames(), 2);
    let second = DEFAULT_PHYS_BASE + 0x1_0000;
    assert_eq!(d.tables().page(second).unwrap().used, 1);
    // Its only table is freed: deferred, the page still holds it.
    assert_eq!(d.unmap(13 * 0x20_0000, 0x20_0000, 1), Ok(0x20_0000));
    assert_eq!(d.tables().page(second).unwrap().state, PageState::Carved);
    assert_eq!(d.tables().free_len(), 0);
    d.grace_period();
    let p = d.tables().page(second).unwrap();
    assert_eq!(p.state, PageState::Free);
    assert_eq!(d.tables().free_len(), 1);
    assert!(d.mem().device_view()[(0x1_0000 / 8)..(0x2_0000 / 8)]
        .iter()
        .all(|&w| w == POISON));
    // One table of the root page freed: the slot is free, the page stays carved.
    assert_eq!(d.unmap(12 * 0x20_0000, 0x20_0000, 1), Ok(0x20_0000));
    d.grace_period();
    let root_page = d.tables().page(DEFAULT_PHYS_BASE).unwrap();
    assert_eq!(root_page.state, PageState::Carved);
    assert_eq!(root_page.free_mask.count_ones(), 1);
    // The next table takes that slot, not the free page.
    assert_eq!(d.map(20 * 0x20_0000, 0x8000_0000, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(d.tables().free_len(), 1);
    assert_eq!(d.counters().pages, 1);
}

#[test]
fn custom_hooks_count_host_pages() {
    let seen = Rc::new(Cell::new((0u64, 0u64)));
    let (a, f) = (seen.clone(), seen.clone());
    let hooks = CustomAllocator {
        alloc: Some(Box::new(move |_, size| {
            let (n, m) = a.get();
            a.set((n + size / 0x4000, m));
            true
        })),
        free: Some(Box::new(move |_, _, size| {
            let (n, m) = f.get();
            f.set((n, m + size / 0x4000));
        })),
        cookie: 7,
    };
    let mut d = Domain::with_flush(cfg(Some(Granule::G16K)), NullFlush, Some(hooks)).unwrap();
    map_region(&mut d, 0);
    map_region(&mut d, 1);
    assert_eq!(seen.get(), (2, 0), "seven tables, two host pages asked for");
    d.clear();
    assert_eq!(
        seen.get(),
        (2, 0),
        "nothing released before the grace period"
    );
    d.grace_period();
    assert_eq!(seen.get(), (2, 1), "the second page went back whole");
    let c = d.counters();
    assert_eq!((c.pages_taken, c.pages_released, c.pages), (2, 1, 1));
}

#[test]
fn the_default_host_page_is_the_granule() {
    let mut a = Domain::new(cfg(None)).unwrap();
    let mut b = Domain::new(cfg(Some(Granule::G4K))).unwrap();
    for d in [&mut a, &mut b] {
        map_region(d, 0);
        map_region(d, 3);
        assert_eq!(d.unmap(0, 0x20_0000, 1), Ok(0x20_0000));
        d.grace_period();
        map_region(d, 5);
    }
    assert_eq!(tables(&a), tables(&b));
    assert_eq!(
        a.mem().frames(),
        9,
        "root, 6 tables, 2 more (one freed table reused)"
    );
    assert_eq!(a.counters(), b.counters());
}

#[test]
fn a_host_page_smaller_than_the_granule_is_refused() {
    let mut c = DomainConfig::new(FormatKind::Arm64S1, Granule::G64K, 48, 48);
    c.host_page = Some(Granule::G16K);
    assert!(Domain::new(c).is_err());
}
