//! The walker against hand-built memory: descriptors encoded by hand from ARM-FACTS.md §1-§4.

use std::collections::HashMap;

use ptfuzz_engine::config::Granule;
use ptfuzz_engine::prot::Prot;

use super::*;

const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const AP_UNPRIV: u64 = 1 << 6;
const AP_RO: u64 = 1 << 7;
const SH_IS: u64 = 3 << 8;
const SH_OS: u64 = 2 << 8;
const XN: u64 = 3 << 53;
const TABLE: u64 = 0b11;
const PAGE: u64 = 0b11;
const BLOCK: u64 = 0b01;

/// Sparse zero-filled memory of descriptors.
#[derive(Default)]
struct Mem(HashMap<u64, u64>);

impl Mem {
    fn set(&mut self, table: u64, index: u64, desc: u64) -> &mut Self {
        self.0.insert(table + 8 * index, desc);
        self
    }
    fn read(&self) -> impl Fn(u64) -> Option<u64> + '_ {
        |pa| Some(self.0.get(&pa).copied().unwrap_or(0))
    }
}

fn s1(g: Granule, ias: u32, oas: u32, start: u32) -> WalkParams {
    WalkParams::new(g, ias, oas, start, false)
}

fn fault_of(r: Result<Translation, Fault>) -> (FaultKind, u32) {
    let f = r.expect_err("expected a fault");
    (f.kind, f.level)
}

const ROOT: u64 = 0x1000_0000;
const T1: u64 = 0x1001_0000;
const T2: u64 = 0x1002_0000;
const T3: u64 = 0x1003_0000;

/// 4K, 48-bit stage 1: L0 -> L1 -> L2 -> L3 page, indices chosen distinct per level.
#[test]
fn page_4k_48bit_s1() {
    let p = s1(Granule::G4K, 48, 48, 0);
    assert_eq!(p.root_entries(), 512);
    let iova = (3u64 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 0x678;
    let leaf = 0x8_1234_5000 | PAGE | AF | NG | AP_UNPRIV | AP_RO | SH_IS | (1 << 2) | XN;
    let mut m = Mem::default();
    m.set(ROOT, 3, T1 | TABLE)
        .set(T1, 5, T2 | TABLE)
        .set(T2, 7, T3 | TABLE)
        .set(T3, 9, leaf);
    let t = translate(&p, ROOT, iova, m.read()).unwrap();
    assert_eq!((t.pa, t.level, t.size), (0x8_1234_5678, 3, 0x1000));
    assert_eq!(t.leaf_iova, iova & !0xfff);
    assert_eq!((t.desc, t.desc_pa, t.table_extra), (leaf, T3 + 72, 0));
    // r + c, unprivileged, no exec: exactly what SEMANTICS.md "Descriptors" writes.
    assert_eq!(
        t.attrs,
        LeafAttrs::expected(Prot::READ | Prot::CACHE, false)
    );
    let LeafAttrs::S1(a) = t.attrs else { panic!() };
    assert!(a.ap_ro && a.ap_unpriv && a.ng && a.af && a.pxn && a.uxn);
    assert_eq!((a.attr_indx, a.sh), (1, 0b11));
    // Neighbouring pages are unmapped: translation fault at L3.
    assert_eq!(
        fault_of(translate(&p, ROOT, iova + 0x1000, m.read())),
        (FaultKind::Translation, 3)
    );
    // A different L0 slot: fault at L0.
    assert_eq!(
        fault_of(translate(&p, ROOT, iova ^ (1 << 39), m.read())),
        (FaultKind::Translation, 0)
    );
    // Outside the 48-bit input range.
    assert_eq!(
        fault_of(translate(&p, ROOT, 1 << 48, m.read())),
        (FaultKind::Translation, 0)
    );
}

#[test]
fn blocks_4k_2m_and_1g() {
    let p = s1(Granule::G4K, 48, 48, 0);
    let mut m = Mem::default();
    m.set(ROOT, 0, T1 | TABLE)
        .set(T1, 1, 0x8000_0000 | BLOCK | AF | SH_OS) // 1G at iova 1G
        .set(T1, 2, T2 | TABLE)
        .set(T2, 3, 0x4060_0000 | BLOCK | AF | SH_OS | NG | AP_UNPRIV); // 2M at iova 2G + 6M
    let t = translate(&p, ROOT, 0x4123_4567, m.read()).unwrap();
    assert_eq!(
        (t.pa, t.level, t.size, t.leaf_iova),
        (0x8123_4567, 1, 1 << 30, 1 << 30)
    );
    let t = translate(&p, ROOT, 0x8070_0001, m.read()).unwrap();
    assert_eq!(
        (t.pa, t.level, t.size, t.leaf_iova),
        (0x4070_0001, 2, 1 << 21, 0x8060_0000)
    );
    // rw, unprivileged, NC, exec allowed.
    assert_eq!(
        t.attrs,
        LeafAttrs::expected(Prot::RW | Prot::EXEC, false),
        "{}",
        t.attrs
    );
    // w alone reads back as rw at stage 1 (AP[2] = 0).
    assert_eq!(
        t.attrs,
        LeafAttrs::expected(Prot::WRITE | Prot::EXEC, false)
    );
}

#[test]
fn block_at_l0_and_l3_01_fault() {
    let p = s1(Granule::G4K, 48, 48, 0);
    let mut m = Mem::default();
    m.set(ROOT, 1, (1 << 39) | BLOCK | AF); // a 512G "block" at L0
    assert_eq!(
        fault_of(translate(&p, ROOT, (1 << 39) + 5, m.read())),
        (FaultKind::Translation, 0)
    );
    m.set(ROOT, 0, T1 | TABLE)
        .set(T1, 0, T2 | TABLE)
        .set(T2, 0, T3 | TABLE)
        .set(T3, 4, 0x9000_4000 | BLOCK | AF); // L3 `01`: reserved
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x4010, m.read())),
        (FaultKind::Translation, 3)
    );
    // The same entry as `11` is a page.
    m.set(T3, 4, 0x9000_4000 | PAGE | AF);
    assert_eq!(
        translate(&p, ROOT, 0x4010, m.read()).unwrap().pa,
        0x9000_4010
    );
}

#[test]
fn output_address_beyond_oas_is_an_address_size_fault() {
    let p = s1(Granule::G4K, 40, 40, 0);
    assert_eq!(p.root_entries(), 2);
    let mut m = Mem::default();
    m.set(ROOT, 0, T1 | TABLE)
        .set(T1, 0, T2 | TABLE)
        .set(T2, 0, T3 | TABLE)
        .set(T3, 0, (1 << 40) | PAGE | AF)
        .set(T3, 1, ((1 << 40) - 0x1000) | PAGE | AF)
        .set(T2, 1, (1 << 40) | BLOCK | AF)
        .set(T1, 1, (1 << 41) | TABLE); // table address beyond OAS
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x10, m.read())),
        (FaultKind::AddressSize, 3)
    );
    assert_eq!(
        translate(&p, ROOT, 0x1010, m.read()).unwrap().pa,
        (1 << 40) - 0x1000 + 0x10
    );
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x20_0000, m.read())),
        (FaultKind::AddressSize, 2)
    );
    assert_eq!(
        fault_of(translate(&p, ROOT, 1 << 30, m.read())),
        (FaultKind::AddressSize, 1)
    );
}

#[test]
fn res0_bits_in_leaves_and_tables() {
    let p = s1(Granule::G4K, 48, 48, 0);
    let mut m = Mem::default();
    m.set(ROOT, 0, T1 | TABLE).set(T1, 0, T2 | TABLE);
    for bad in [1 << 13, 1 << 16, 1 << 20, 1 << 48, 1 << 49] {
        m.set(T2, 0, 0x4000_0000 | bad | BLOCK | AF);
        let f = translate(&p, ROOT, 0x1234, m.read()).unwrap_err();
        assert_eq!((f.kind, f.level), (FaultKind::Res0, 2), "bit {:#x}", bad);
        assert_eq!(f.desc, Some(0x4000_0000 | bad | BLOCK | AF));
    }
    // 1G block with bits in [29:17]
    m.set(T1, 1, 0x8000_0000 | (1 << 25) | BLOCK | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, 1 << 30, m.read())),
        (FaultKind::Res0, 1)
    );
    // Table descriptor with [50:48] set.
    m.set(ROOT, 1, T1 | (1 << 50) | TABLE);
    assert_eq!(
        fault_of(translate(&p, ROOT, 1 << 39, m.read())),
        (FaultKind::Res0, 0)
    );
    // Ignored / hierarchical bits in a table are reported, not faulted.
    m.set(ROOT, 2, T1 | (1 << 61) | (1 << 5) | TABLE)
        .set(T1, 3, 0xc000_0000 | BLOCK | AF);
    let t = translate(&p, ROOT, (2 << 39) | (3 << 30), m.read()).unwrap();
    assert_eq!(t.table_extra, (1 << 61) | (1 << 5));
}

#[test]
fn access_flag_and_external_abort() {
    let p = s1(Granule::G4K, 48, 48, 0);
    let mut m = Mem::default();
    m.set(ROOT, 0, T1 | TABLE).set(T1, 0, 0x4000_0000 | BLOCK);
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x10, m.read())),
        (FaultKind::AccessFlag, 1)
    );
    let f = translate(&p, ROOT, 0, |pa| (pa < T1).then_some(T1 | TABLE)).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.desc_pa),
        (FaultKind::External, 1, Some(T1))
    );
}

#[test]
fn granule_16k() {
    // 48-bit: L0 has 2 entries, L1 2048.
    let p = s1(Granule::G16K, 48, 48, 0);
    assert_eq!(
        (p.root_entries(), p.table_entries(), p.shift(2)),
        (2, 2048, 25)
    );
    let mut m = Mem::default();
    let iova = (1u64 << 47) | (1000 << 36) | (3 << 25) | 0x12_3456;
    m.set(ROOT, 1, T1 | TABLE)
        .set(T1, 1000, T2 | TABLE)
        .set(T2, 3, 0x6_0200_0000 | BLOCK | AF);
    let t = translate(&p, ROOT, iova, m.read()).unwrap();
    assert_eq!((t.pa, t.level, t.size), (0x6_0212_3456, 2, 32 << 20));
    // 32M block with a RES0 bit below the OA (bit 24).
    m.set(T2, 3, 0x6_0200_0000 | (1 << 24) | BLOCK | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, m.read())),
        (FaultKind::Res0, 2)
    );
    // No blocks at L1 with 16K (64G would need LPA2).
    m.set(T1, 1000, 0x10_0000_0000 | BLOCK | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, m.read())),
        (FaultKind::Translation, 1)
    );
    // 16K page; bits [13:12] of a page are RES0.
    m.set(T1, 1000, T2 | TABLE)
        .set(T2, 3, T3 | TABLE)
        .set(T3, 0x48, 0x7_0001_c000 | PAGE | AF);
    let iova = (1u64 << 47) | (1000 << 36) | (3 << 25) | (0x48 << 14) | 0x3abc;
    let t = translate(&p, ROOT, iova, m.read()).unwrap();
    assert_eq!((t.pa, t.level, t.size), (0x7_0001_fabc, 3, 16 << 10));
    m.set(T3, 0x48, 0x7_0001_c000 | (1 << 12) | PAGE | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, m.read())),
        (FaultKind::Res0, 3)
    );
}

#[test]
fn granule_64k() {
    // 48-bit: start L1 with 64 entries; L2/L3 tables have 8192.
    let p = s1(Granule::G64K, 48, 48, 1);
    assert_eq!(
        (p.root_entries(), p.table_entries(), p.shift(2)),
        (64, 8192, 29)
    );
    let mut m = Mem::default();
    let iova = (63u64 << 42) | (5000 << 29) | 0x1bcd_ef01;
    m.set(ROOT, 63, T1 | TABLE)
        .set(T1, 5000, 0xa0_0000_0000 | BLOCK | AF);
    let t = translate(&p, ROOT, iova, m.read()).unwrap();
    assert_eq!((t.pa, t.level, t.size), (0xa0_1bcd_ef01, 2, 512 << 20));
    // A 4T block at L1 needs FEAT_LPA: translation fault.
    m.set(ROOT, 63, (1 << 42) | BLOCK | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, m.read())),
        (FaultKind::Translation, 1)
    );
    // 64K page; [15:12] hold OA[51:48] only with LPA, else RES0.
    m.set(ROOT, 63, T1 | TABLE)
        .set(T1, 5000, T2 | TABLE)
        .set(T2, 7000, 0x3_0005_0000 | PAGE | AF);
    let iova = (63u64 << 42) | (5000 << 29) | (7000 << 16) | 0xfff8;
    assert_eq!(
        translate(&p, ROOT, iova, m.read()).unwrap().pa,
        0x3_0005_fff8
    );
    m.set(T2, 7000, 0x3_0005_0000 | (1 << 12) | PAGE | AF);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, m.read())),
        (FaultKind::Res0, 3)
    );
}

/// 4K stage 2, IAS 40: start L1 with 1024 entries = 2 concatenated tables; index 700 lives
/// in the second table (QEMU's deviation would read table 0).
#[test]
fn concatenated_s2_root() {
    let p = WalkParams::new(Granule::G4K, 40, 40, 1, true);
    assert_eq!(p.root_entries(), 1024);
    let iova = (700u64 << 30) | 0x1234_5678;
    let s2_leaf = 0x40_0000_0000 - (1 << 30); // last 1G below 2^38... any 1G-aligned PA
    let desc = s2_leaf | BLOCK | AF | (0b11 << 6) | (0b1111 << 2) | SH_IS;
    let mut m = Mem::default();
    m.set(ROOT + 0x1000, 700 - 512, desc);
    let t = translate(&p, ROOT, iova, m.read()).unwrap();
    assert_eq!(
        (t.pa, t.level, t.desc_pa),
        (s2_leaf | 0x1234_5678, 1, ROOT + 8 * 700)
    );
    assert_eq!(
        t.attrs,
        LeafAttrs::expected(Prot::RW | Prot::CACHE | Prot::EXEC, true)
    );
    // p is ignored at stage 2.
    assert_eq!(
        t.attrs,
        LeafAttrs::expected(Prot::RW | Prot::CACHE | Prot::EXEC | Prot::PRIV, true)
    );
    // The same descriptor in table 0 at index 188 is a different IPA.
    let mut q = Mem::default();
    q.set(ROOT, 188, desc);
    assert_eq!(
        fault_of(translate(&p, ROOT, iova, q.read())),
        (FaultKind::Translation, 1)
    );
    assert_eq!(
        translate(&p, ROOT, 188 << 30, q.read()).unwrap().pa,
        s2_leaf
    );
}

#[test]
fn stage2_attributes() {
    let p = WalkParams::new(Granule::G4K, 48, 48, 0, true);
    let mut m = Mem::default();
    m.set(ROOT, 0, T1 | TABLE)
        .set(T1, 0, T2 | TABLE)
        .set(T2, 0, T3 | TABLE);
    let cases: [(u64, Prot); 4] = [
        // write-only, device, no exec: S2AP 10, MemAttr 0001, SH outer, XN 11
        (
            (0b10 << 6) | (0b0001 << 2) | SH_OS | XN,
            Prot::WRITE | Prot::MMIO,
        ),
        // read-only NC exec
        ((0b01 << 6) | (0b0101 << 2) | SH_OS, Prot::READ | Prot::EXEC),
        // rw, m + c: MemAttr from m, SH inner from c
        (
            (0b11 << 6) | (0b0001 << 2) | SH_IS | XN,
            Prot::RW | Prot::MMIO | Prot::CACHE,
        ),
        (
            (0b11 << 6) | (0b1111 << 2) | SH_IS | XN,
            Prot::RW | Prot::CACHE | Prot::PRIV,
        ),
    ];
    for (bits, prot) in cases {
        m.set(T3, 0, 0x5000 | PAGE | AF | bits);
        let t = translate(&p, ROOT, 0x10, m.read()).unwrap();
        assert_eq!(
            t.attrs,
            LeafAttrs::expected(prot, true),
            "{prot}: {}",
            t.attrs
        );
    }
    // Bit 11 (nG at stage 1) is RES0 at stage 2.
    m.set(T3, 0, 0x5000 | PAGE | AF | NG | (0b01 << 6));
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x10, m.read())),
        (FaultKind::Res0, 3)
    );
}

#[test]
fn stage1_attributes_from_prot() {
    let e = |p| match LeafAttrs::expected(p, false) {
        LeafAttrs::S1(a) => a,
        _ => unreachable!(),
    };
    let a = e(Prot::READ | Prot::PRIV | Prot::MMIO);
    assert!(a.ap_ro && !a.ap_unpriv && a.pxn && a.uxn && a.af && a.ng);
    assert_eq!((a.attr_indx, a.sh), (2, 0b10));
    let a = e(Prot::RW | Prot::EXEC | Prot::MMIO | Prot::CACHE);
    assert!(!a.ap_ro && a.ap_unpriv && !a.pxn && !a.uxn);
    assert_eq!((a.attr_indx, a.sh), (2, 0b11));
}

#[test]
fn bits_helper() {
    assert_eq!(descriptor::bits(47, 12), 0x0000_ffff_ffff_f000);
    assert_eq!(descriptor::bits(11, 12), 0);
    assert_eq!(descriptor::bits(63, 0), u64::MAX);
}

/// A non-coherent walker reads what the device sees: a table the CPU has written but not yet
/// cleaned to the device is invisible to the walk (the engine's PhysMem keeps the two views;
/// the walker is only ever handed the device one).
#[test]
fn stale_device_view_is_what_the_walk_sees() {
    let p = s1(Granule::G4K, 39, 40, 1);
    let mut cpu = Mem::default();
    cpu.set(ROOT, 0, T2 | TABLE)
        .set(T2, 0, T3 | TABLE)
        .set(T3, 1, 0x7000 | PAGE | AF);
    // The device saw the L1 and L2 entries, not yet the new page.
    let mut dev = Mem::default();
    dev.set(ROOT, 0, T2 | TABLE).set(T2, 0, T3 | TABLE);
    assert_eq!(translate(&p, ROOT, 0x1008, cpu.read()).unwrap().pa, 0x7008);
    assert_eq!(
        fault_of(translate(&p, ROOT, 0x1008, dev.read())),
        (FaultKind::Translation, 3)
    );
}
