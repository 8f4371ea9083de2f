//! Armv7 short-descriptor format (VMSAv7 short descriptors) as Linux io-pgtable-arm-v7s
//! writes it: 32-bit descriptors, a 4096-entry (16 KiB) first level resolving IA[31:20] and
//! 256-entry (1 KiB) second-level tables resolving IA[19:12]; 4K small pages and 64K large
//! pages (one descriptor repeated in 16 slots) at level 2, 1M sections and 16M
//! supersections (16 slots) at level 1. ARM-FACTS.md §8, docs/SEMANTICS.md "Armv7 short
//! descriptor". Every short-descriptor constant of the engine lives in this file.

use crate::config::{Concat, DomainConfig, Granule};
use crate::format::{Entry, Format, Layout, MAX_LEVELS};
use crate::geometry::ConfigError;
use crate::prot::Prot;

/// Descriptor type bits [1:0].
const TYPE_MASK: u64 = 0b11;
/// Level 1: a page-table (level 2) pointer. Level 2: a large page.
const TYPE_TABLE_OR_LARGE: u64 = 0b01;
/// Level 1: a section (bit 0 is PXN, never set). Level 2: a small page (bit 0 is XN).
const TYPE_SECTION_OR_SMALL: u64 = 0b10;
/// Level 1: a section of 16 slots, a supersection.
const SUPERSECTION: u64 = 1 << 18;

// Attribute bits as io-pgtable-arm-v7s assembles them, before shifting into place: the
// same field order in a section (shift 10) and a small page (shift 4).
const AP0_AF: u64 = 1 << 0; // AP[0] as an access flag (simplified access model)
const AP1_UNPRIV: u64 = 1 << 1;
const TEX1: u64 = 1 << 2; // TEX = 0b001: Normal memory, remapped
const AP2_RDONLY: u64 = 1 << 5;
const SHARED: u64 = 1 << 6;
const NG: u64 = 1 << 7;
/// B and C at bits 2 and 3 in every leaf.
const B: u64 = 1 << 2;
const C: u64 = 1 << 3;

/// Level-1 table address [31:10], section [31:20], supersection [31:24]; level-2 large page
/// [31:16], small page [31:12].
const L1_TABLE_ADDR: u64 = 0xffff_fc00;
const SECTION_ADDR: u64 = 0xfff0_0000;
const SUPERSECTION_ADDR: u64 = 0xff00_0000;
const LARGE_ADDR: u64 = 0xffff_0000;
const SMALL_ADDR: u64 = 0xffff_f000;

const SECTION_SHIFT: u32 = 20;
const SMALL_SHIFT: u32 = 12;
/// Slots a large page or supersection repeats over: 16.
const CONT_LOG2: u32 = 4;

/// Armv7 short descriptors (stage 1 only).
#[derive(Clone, Copy, Debug, Default)]
pub struct V7s;

impl V7s {
    pub fn new() -> V7s {
        V7s
    }

    /// Where the attribute byte starts in a level's leaves (io-pgtable `ATTR_SHIFT`).
    fn attr_shift(level: u32) -> u32 {
        if level == 1 {
            10
        } else {
            4
        }
    }
}

impl Format for V7s {
    fn layout(&self, cfg: &DomainConfig) -> Result<Layout, ConfigError> {
        let refuse = |m: String| Err(ConfigError(m));
        if cfg.granule != Granule::G4K {
            return refuse(format!("armv7s has no {} granule", cfg.granule));
        }
        if cfg.ias != 32 {
            return refuse(format!("armv7s takes IAS 32, not {}", cfg.ias));
        }
        if cfg.oas != 32 {
            return refuse(format!("armv7s takes OAS 32, not {}", cfg.oas));
        }
        if cfg.concat != Concat::Required {
            return refuse(format!("concat={} applies to stage 2 only", cfg.concat));
        }
        let mut shifts = [0; MAX_LEVELS];
        let mut table_bits = [0; MAX_LEVELS];
        shifts[1] = SECTION_SHIFT;
        shifts[2] = SMALL_SHIFT;
        table_bits[1] = 32 - SECTION_SHIFT; // 4096 entries, 16 KiB
        table_bits[2] = SECTION_SHIFT - SMALL_SHIFT; // 256 entries, 1 KiB
        let sizes = [
            SMALL_SHIFT,
            SMALL_SHIFT + CONT_LOG2,
            SECTION_SHIFT,
            SECTION_SHIFT + CONT_LOG2,
        ];
        Ok(Layout {
            // The allocation unit is the smallest table, a 1 KiB level 2: four share a 4K
            // host page (more with a larger `hostpage=`), as Linux's 1 KiB kmem cache does.
            frame_shift: SECTION_SHIFT - SMALL_SHIFT + 2,
            entry_bytes: 4,
            start_level: 1,
            last_level: 2,
            shifts,
            table_bits,
            leaf_sizes: sizes.iter().fold(0, |m, &k| m | 1 << k),
        })
    }

    fn leaf_attrs(&self, prot: Prot, level: u32, size_log2: u32) -> u64 {
        let mut a = NG | SHARED | AP0_AF;
        if !prot.contains(Prot::MMIO) {
            a |= TEX1;
        }
        if !prot.contains(Prot::PRIV) {
            a |= AP1_UNPRIV;
        }
        if !prot.writable() {
            a |= AP2_RDONLY;
        }
        let mut pte = a << Self::attr_shift(level);
        let xn = !prot.contains(Prot::EXEC);
        if prot.contains(Prot::MMIO) {
            pte |= B;
        } else if prot.contains(Prot::CACHE) {
            pte |= B | C;
        }
        let cont = size_log2 > self.layout_shift(level);
        if level == 1 {
            pte |= TYPE_SECTION_OR_SMALL;
            if xn {
                pte |= 1 << 4;
            }
            if cont {
                pte |= SUPERSECTION;
            }
        } else if cont {
            // Large page: TEX moves from [8:6] to [14:12], XN from bit 0 to bit 15.
            let tex = pte & (0b111 << 6);
            pte = (pte & !tex) | (tex << 6) | TYPE_TABLE_OR_LARGE;
            if xn {
                pte |= 1 << 15;
            }
        } else {
            pte |= TYPE_SECTION_OR_SMALL;
            if xn {
                pte |= 1;
            }
        }
        pte
    }

    #[inline(always)]
    fn table(&self, pa: u64) -> u64 {
        pa | TYPE_TABLE_OR_LARGE
    }

    #[inline(always)]
    fn decode(&self, pte: u64, level: u32) -> Entry {
        match (level, pte & TYPE_MASK) {
            (_, 0) => Entry::Invalid,
            (1, TYPE_TABLE_OR_LARGE) => Entry::Table(pte & L1_TABLE_ADDR),
            (1, _) if pte & SUPERSECTION != 0 => Entry::Leaf(pte & SUPERSECTION_ADDR),
            (1, _) => Entry::Leaf(pte & SECTION_ADDR),
            (_, TYPE_TABLE_OR_LARGE) => Entry::Leaf(pte & LARGE_ADDR),
            _ => Entry::Leaf(pte & SMALL_ADDR),
        }
    }

    #[inline(always)]
    fn leaf_repeat_log2(&self, pte: u64, level: u32) -> u32 {
        let cont = match level {
            1 => pte & SUPERSECTION != 0,
            _ => pte & TYPE_MASK == TYPE_TABLE_OR_LARGE,
        };
        if cont {
            CONT_LOG2
        } else {
            0
        }
    }

    /// io-pgtable-arm-v7s has no CAP_CUSTOM_ALLOCATOR: its level-2 tables come from its own
    /// 1 KiB kmem_cache.
    fn custom_allocator_cap(&self) -> bool {
        false
    }
}

impl V7s {
    fn layout_shift(&self, level: u32) -> u32 {
        if level == 1 {
            SECTION_SHIFT
        } else {
            SMALL_SHIFT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_page_and_section_attributes_match_io_pgtable_v7s() {
        let f = V7s;
        // rw, normal, unprivileged, no exec: nG S TEX1 AP1 AP0 at shift 4, XN, type 1x.
        let pte = f.leaf_attrs(Prot::RW, 2, 12);
        assert_eq!(
            pte,
            (1 << 11) | (1 << 10) | (1 << 6) | (1 << 5) | (1 << 4) | 0b11
        );
        // The same fields at shift 10 in a section, XN at bit 4.
        let pte = f.leaf_attrs(Prot::READ | Prot::CACHE, 1, 20);
        let want = (1 << 17) | (1 << 16) | (1 << 15) | (1 << 12) | (1 << 11) | (1 << 10);
        assert_eq!(pte, want | C | B | (1 << 4) | 0b10);
        assert_eq!(f.leaf_attrs(Prot::READ, 1, 24) & SUPERSECTION, SUPERSECTION);
    }

    #[test]
    fn large_page_moves_tex_and_xn() {
        let f = V7s;
        let pte = f.leaf_attrs(Prot::RW | Prot::PRIV, 2, 16);
        assert_eq!(pte & 0b11, 0b01, "large page type");
        assert_eq!(pte & (0b111 << 12), 1 << 12, "TEX=001 at [14:12]");
        assert_eq!(pte & (0b111 << 6), 0, "nothing left at [8:6]");
        assert_ne!(pte & (1 << 15), 0, "XN at 15");
        assert_eq!(pte & (1 << 5), 0, "privileged: AP[1] clear");
    }

    #[test]
    fn decode_reads_back_every_kind() {
        let f = V7s;
        assert_eq!(f.decode(0x4000_0401, 1), Entry::Table(0x4000_0400));
        assert_eq!(f.decode(0x4010_0002 | 0xc00, 1), Entry::Leaf(0x4010_0000));
        let ss = 0x4100_0002 | SUPERSECTION;
        assert_eq!(f.decode(ss, 1), Entry::Leaf(0x4100_0000));
        assert_eq!(f.leaf_repeat_log2(ss, 1), 4);
        assert_eq!(f.decode(0x4001_0001, 2), Entry::Leaf(0x4001_0000));
        assert_eq!(f.leaf_repeat_log2(0x4001_0001, 2), 4);
        assert_eq!(f.decode(0x4001_2003, 2), Entry::Leaf(0x4001_2000));
        assert_eq!(f.leaf_repeat_log2(0x4001_2003, 2), 0);
        assert_eq!(f.decode(0x4001_2000, 2), Entry::Invalid);
    }
}
