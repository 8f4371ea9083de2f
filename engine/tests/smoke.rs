use ptfuzz_engine::*;

#[test]
fn design_example() {
    let mut d = Domain::new(DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48)).unwrap();
    assert_eq!(
        d.map(0x200000, 0x40200000, 0x200000, 1, Prot::RW),
        Ok(0x200000)
    );
    assert_eq!(
        d.map(0x200000, 0x40000000, 0x1000, 1, Prot::READ),
        Err(MapError::new(ErrorKind::Exists, 0))
    );
    assert_eq!(d.lookup(0x201234), Some(0x40201234));
    assert_eq!(d.unmap(0x200000, 0x1000, 1), Ok(0));
    assert_eq!(d.unmap(0x200000, 0x200000, 1), Ok(0x200000));
    assert_eq!(d.lookup(0x201234), None);
    // 4K pages, then unmap the whole L3 table span: the table is freed.
    assert_eq!(
        d.map(0x400000, 0x80000000, 0x1000, 512, Prot::RW),
        Ok(0x200000)
    );
    let c = d.counters();
    assert_eq!(c.live, 4);
    assert_eq!(d.lookup(0x400000 + 0x1ff123), Some(0x80000000 + 0x1ff123));
    assert_eq!(d.unmap(0x400000, 0x1000, 512), Ok(0x200000));
    assert_eq!(d.counters().live, 3);
    assert_eq!(d.counters().deferred, 1);
    d.grace_period();
    assert_eq!(d.counters().freed, 1);
}
