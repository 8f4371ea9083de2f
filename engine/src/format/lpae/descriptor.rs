//! LPAE descriptors, stage 1 and stage 2, encoded as Linux io-pgtable-arm does (see
//! docs/SEMANTICS.md, "Descriptors").

use super::layout::LAST_LEVEL;
use crate::config::{DomainConfig, FormatKind};
use crate::format::{Entry, Format, Layout};
use crate::geometry::ConfigError;
use crate::prot::Prot;

const VALID: u64 = 1 << 0;
const TYPE_TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const SH_OS: u64 = 2 << 8;
const SH_IS: u64 = 3 << 8;
const XN: u64 = 3 << 53;
// Stage 1.
const AP_UNPRIV: u64 = 1 << 6;
const AP_RDONLY: u64 = 1 << 7;
const ATTRINDX_CACHE: u64 = 1 << 2;
const ATTRINDX_DEV: u64 = 2 << 2;
// Stage 2.
const S2AP_READ: u64 = 1 << 6;
const S2AP_WRITE: u64 = 1 << 7;
const MEMATTR_OIWB: u64 = 0xf << 2;
const MEMATTR_NC: u64 = 0x5 << 2;
const MEMATTR_DEV: u64 = 0x1 << 2;
/// Output/table address bits [47:12]; the engine only writes granule-aligned addresses.
const ADDR_MASK: u64 = ((1 << 48) - 1) & !0xfff;

/// MAIR the stage-1 AttrIndx values refer to (Linux ARM_LPAE_MAIR_ATTR_*).
pub const MAIR: u64 = 0x0000_0000_f404_ff44;

/// Arm LPAE descriptors for one stage.
#[derive(Clone, Copy, Debug)]
pub struct Lpae {
    pub(super) kind: FormatKind,
    stage2: bool,
    arm64: bool,
}

impl Lpae {
    pub fn new(kind: FormatKind) -> Lpae {
        Lpae {
            kind,
            stage2: kind.is_stage2(),
            arm64: matches!(kind, FormatKind::Arm64S1 | FormatKind::Arm64S2),
        }
    }
}

impl Format for Lpae {
    fn layout(&self, cfg: &DomainConfig) -> Result<Layout, ConfigError> {
        super::layout::layout(self.kind, cfg)
    }

    #[inline]
    fn leaf_attrs(&self, prot: Prot, level: u32, _size_log2: u32) -> u64 {
        let mut pte = VALID | AF;
        if level == LAST_LEVEL {
            pte |= TYPE_TABLE_OR_PAGE;
        }
        if self.stage2 {
            if prot.readable() {
                pte |= S2AP_READ;
            }
            if prot.writable() {
                pte |= S2AP_WRITE;
            }
            pte |= if prot.contains(Prot::MMIO) {
                MEMATTR_DEV
            } else if prot.contains(Prot::CACHE) {
                MEMATTR_OIWB
            } else {
                MEMATTR_NC
            };
        } else {
            pte |= NG;
            if !prot.writable() {
                pte |= AP_RDONLY;
            }
            if !prot.contains(Prot::PRIV) {
                pte |= AP_UNPRIV;
            }
            if prot.contains(Prot::MMIO) {
                pte |= ATTRINDX_DEV;
            } else if prot.contains(Prot::CACHE) {
                pte |= ATTRINDX_CACHE;
            }
        }
        pte |= if prot.contains(Prot::CACHE) {
            SH_IS
        } else {
            SH_OS
        };
        if !prot.contains(Prot::EXEC) {
            pte |= XN;
        }
        pte
    }

    #[inline(always)]
    fn table(&self, pa: u64) -> u64 {
        pa | VALID | TYPE_TABLE_OR_PAGE
    }

    #[inline(always)]
    fn decode(&self, pte: u64, level: u32) -> Entry {
        if pte & VALID == 0 {
            Entry::Invalid
        } else if level == LAST_LEVEL {
            if pte & TYPE_TABLE_OR_PAGE != 0 {
                Entry::Leaf(pte & ADDR_MASK)
            } else {
                Entry::Invalid
            }
        } else if pte & TYPE_TABLE_OR_PAGE != 0 {
            Entry::Table(pte & ADDR_MASK)
        } else {
            Entry::Leaf(pte & ADDR_MASK)
        }
    }

    fn custom_allocator_cap(&self) -> bool {
        self.arm64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage1_attributes_match_io_pgtable_arm() {
        let f = Lpae::new(FormatKind::Arm64S1);
        // rw, not cacheable, not privileged: page, AF, nG, AP[1], SH outer, XN.
        let pte = f.leaf_attrs(Prot::RW, 3, 0);
        assert_eq!(pte, 0b11 | AF | NG | AP_UNPRIV | SH_OS | XN);
        // read-only, cacheable, privileged, exec, block.
        let pte = f.leaf_attrs(Prot::READ | Prot::CACHE | Prot::PRIV | Prot::EXEC, 2, 0);
        assert_eq!(pte, 0b01 | AF | NG | AP_RDONLY | ATTRINDX_CACHE | SH_IS);
        let pte = f.leaf_attrs(Prot::RW | Prot::MMIO, 3, 0);
        assert_eq!(pte & (7 << 2), ATTRINDX_DEV);
    }

    #[test]
    fn stage2_attributes_match_io_pgtable_arm() {
        let f = Lpae::new(FormatKind::Arm64S2);
        let pte = f.leaf_attrs(Prot::READ, 3, 0);
        assert_eq!(pte, 0b11 | AF | S2AP_READ | MEMATTR_NC | SH_OS | XN);
        let pte = f.leaf_attrs(Prot::RW | Prot::CACHE | Prot::EXEC, 1, 0);
        assert_eq!(
            pte,
            0b01 | AF | S2AP_READ | S2AP_WRITE | MEMATTR_OIWB | SH_IS
        );
        assert_eq!(
            f.leaf_attrs(Prot::WRITE | Prot::MMIO, 2, 0) & (0xf << 2),
            MEMATTR_DEV
        );
    }

    #[test]
    fn decode_distinguishes_blocks_tables_and_reserved_l3() {
        let f = Lpae::new(FormatKind::Arm64S1);
        assert_eq!(f.decode(0x4000_1003, 1), Entry::Table(0x4000_1000));
        assert_eq!(f.decode(0x4020_0001 | AF, 2), Entry::Leaf(0x4020_0000));
        assert_eq!(f.decode(0x4020_1001, 3), Entry::Invalid);
        assert_eq!(f.decode(0x4020_1003, 3), Entry::Leaf(0x4020_1000));
        assert_eq!(f.decode(0x4020_1002, 2), Entry::Invalid);
    }
}
