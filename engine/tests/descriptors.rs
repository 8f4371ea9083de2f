//! Descriptor bits as SEMANTICS.md "Descriptors" (Linux io-pgtable-arm) and ARM-FACTS §4
//! lay them out, read back from the device view with this file's own decoding.

mod common;

use common::*;
use ptfuzz_engine::{FormatKind, Granule, Prot};

use FormatKind::*;
use Granule::*;

// ARM-FACTS §4 bit positions.
const VALID: u64 = 1 << 0;
const PAGE_OR_TABLE: u64 = 1 << 1;
const ATTRINDX_SHIFT: u32 = 2; // [4:2], stage 1
const MEMATTR_SHIFT: u32 = 2; // [5:2], stage 2
const AP1_UNPRIV: u64 = 1 << 6;
const AP2_RDONLY: u64 = 1 << 7;
const S2AP_R: u64 = 1 << 6;
const S2AP_W: u64 = 1 << 7;
const SH_OUTER: u64 = 0b10 << 8;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const PXN_53: u64 = 1 << 53;
const UXN_54: u64 = 1 << 54;

/// Every prot built from the six letters.
fn all_prots() -> impl Iterator<Item = Prot> {
    (0u8..64).map(Prot::from_bits_truncate)
}

/// The leaf SEMANTICS.md says the engine writes for `prot` at `level`.
fn expected_leaf(stage2: bool, level: u32, pa: u64, prot: Prot) -> u64 {
    let c = prot.contains(Prot::CACHE);
    let m = prot.contains(Prot::MMIO);
    let mut d = pa | VALID | AF;
    if level == 3 {
        d |= PAGE_OR_TABLE;
    }
    if stage2 {
        if prot.readable() {
            d |= S2AP_R;
        }
        if prot.writable() {
            d |= S2AP_W;
        }
        // MemAttr: 0001 for m, 1111 for c, 0101 otherwise (m wins over c, as in Linux).
        let memattr: u64 = if m {
            0b0001
        } else if c {
            0b1111
        } else {
            0b0101
        };
        d |= memattr << MEMATTR_SHIFT;
    } else {
        d |= NG;
        if !prot.writable() {
            d |= AP2_RDONLY;
        }
        if !prot.contains(Prot::PRIV) {
            d |= AP1_UNPRIV;
        }
        let idx: u64 = if m {
            2
        } else if c {
            1
        } else {
            0
        };
        d |= idx << ATTRINDX_SHIFT;
    }
    d |= if c { SH_INNER } else { SH_OUTER };
    if !prot.contains(Prot::EXEC) {
        d |= PXN_53 | UXN_54;
    }
    d
}

fn configs() -> Vec<Expect> {
    let mut v = Vec::new();
    for g in Granule::ALL {
        v.push(expected(Arm64S1, g, 48, 48).unwrap());
        v.push(expected(Arm64S1, g, 39, 40).unwrap());
        v.push(expected(Arm64S2, g, 48, 48).unwrap());
        v.push(expected(Arm64S2, g, 40, 44).unwrap());
    }
    v.push(expected(Arm32LpaeS1, G4K, 32, 40).unwrap());
    v.push(expected(Arm32LpaeS2, G4K, 40, 40).unwrap());
    v.push(expected(Arm32LpaeS2, G4K, 33, 36).unwrap());
    v
}

#[test]
fn leaf_attributes_for_every_prot_level_and_format() {
    for e in configs() {
        let stage2 = e.format.is_stage2();
        let mut d = domain_for(&e);
        for pg in e.page_sizes() {
            let level = e.level_of(pg);
            for (k, prot) in all_prots().enumerate() {
                if !prot.readable() && !prot.writable() {
                    continue;
                }
                let iova = pg * (k as u64 % 4);
                let pa = pa_for(&e, pg, 1, k as u64 + pg);
                let what = format!("{e:?} pgsize {pg:#x} prot {prot}");
                assert_eq!(d.map(iova, pa, pg, 1, prot), Ok(pg), "{what}");
                let (steps, leaf) = walk(&d, &e, iova);
                let (lvl, desc) = leaf.unwrap_or_else(|| panic!("{what}: no leaf"));
                assert_eq!(lvl, level, "{what}: leaf level");
                assert_eq!(
                    desc,
                    expected_leaf(stage2, level, pa, prot),
                    "{what}: descriptor {desc:#018x} vs expected {:#018x}",
                    expected_leaf(stage2, level, pa, prot)
                );
                // Every table on the way: address | 0b11 and nothing else.
                for w in steps.windows(2) {
                    assert_eq!(
                        w[0].desc,
                        w[1].table | 0b11,
                        "{what}: table descriptor at L{}",
                        w[0].level
                    );
                }
                assert_eq!(d.unmap(iova, pg, 1), Ok(pg), "{what}");
            }
        }
    }
}

/// Output address bits: all ones up to OAS, and alternating patterns, land in [OAS-1 : shift]
/// and nowhere else.
#[test]
fn output_address_bits() {
    for e in configs() {
        let mut d = domain_for(&e);
        for pg in e.page_sizes() {
            let level = e.level_of(pg);
            let top = e.oa_size() - pg;
            let patterns = [
                top,
                0x5555_5555_5555_5555 & (e.oa_size() - 1) & !(pg - 1),
                0xaaaa_aaaa_aaaa_aaaa & (e.oa_size() - 1) & !(pg - 1),
                0,
                pg,
            ];
            for pa in patterns {
                let what = format!("{e:?} pgsize {pg:#x} pa {pa:#x}");
                assert_eq!(d.map(0, pa, pg, 1, Prot::RW), Ok(pg), "{what}");
                let (_, leaf) = walk(&d, &e, 0);
                let (_, desc) = leaf.unwrap();
                let oa_field = ADDR_47_12 & !(pg - 1);
                assert_eq!(desc & oa_field, pa, "{what}: OA field");
                assert_eq!(
                    desc & !oa_field,
                    expected_leaf(e.format.is_stage2(), level, 0, Prot::RW),
                    "{what}"
                );
                assert_eq!(d.lookup(pg - 1), Some(pa + pg - 1));
                assert_eq!(d.unmap(0, pg, 1), Ok(pg));
            }
        }
    }
}

/// A run of pages gets one descriptor per page with OA stepping by the page size and
/// identical attributes; no contiguous hint (bit 52) is ever set.
#[test]
fn runs_step_the_output_address() {
    for e in configs() {
        let mut d = domain_for(&e);
        for pg in e.page_sizes() {
            let count = 20.min(e.ia_size() / pg).min(e.oa_size() / pg - 1);
            let pa = pa_for(&e, pg, count, 3);
            let prot = Prot::READ | Prot::CACHE;
            assert_eq!(d.map(0, pa, pg, count, prot), Ok(count * pg));
            for k in 0..count {
                let (_, leaf) = walk(&d, &e, k * pg);
                let (level, desc) = leaf.unwrap();
                assert_eq!(
                    desc,
                    expected_leaf(e.format.is_stage2(), level, pa + k * pg, prot)
                );
                assert_eq!(desc & (1 << 52), 0, "contiguous bit set");
            }
            assert_eq!(d.unmap(0, pg, count), Ok(count * pg));
        }
    }
}

/// The MAIR the stage-1 AttrIndx values refer to: idx0 Normal NC (0x44), idx1 Normal WB
/// (0xff), idx2 Device-nGnRE (0x04), idx3 0xf4 (ARM-FACTS §4).
#[test]
fn mair_value() {
    assert_eq!(ptfuzz_engine::format::MAIR, 0x0000_0000_f404_ff44);
    let byte = |i: u32| (ptfuzz_engine::format::MAIR >> (8 * i)) & 0xff;
    assert_eq!(
        (byte(0), byte(1), byte(2), byte(3)),
        (0x44, 0xff, 0x04, 0xf4)
    );
}

/// The L3 encoding `01` is reserved: the engine never writes it, and no block appears at a
/// level where the granule has none (the walker in `common` panics on both).
#[test]
fn no_reserved_encodings_anywhere() {
    for e in sample() {
        let mut d = domain_for(&e);
        for (i, pg) in e.page_sizes().into_iter().enumerate() {
            let iova = (i as u64 + 1) * *e.page_sizes().last().unwrap();
            if iova + 2 * pg <= e.ia_size() {
                assert_eq!(d.map(iova, 0, pg, 2, Prot::WRITE), Ok(2 * pg));
            }
        }
        let (_, leaves) = check_structure(&d, &e);
        for l in leaves {
            assert!(e.block_allowed(e.level_of(l.size)));
        }
    }
}
