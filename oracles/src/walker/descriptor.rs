//! VMSAv8-64 / VMSAv8-32 long-descriptor decoding, written from ARM-FACTS.md §1 and §4
//! (48-bit OA, no FEAT_LPA / LPA2 / BBM / XS): descriptor types, where blocks are allowed,
//! the output-address field per level and granule, the RES0 bits below it.

use std::fmt;

use super::attrs::{LeafAttrs, S1Attrs, S2Attrs};
use super::params::WalkParams;

/// Why a walk stopped without a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Invalid descriptor (bit 0 clear), a block where the granule allows none (e.g. L0, or
    /// L1 with 16K/64K), the reserved L3 encoding `01`, or an input address >= 2^IAS.
    Translation,
    /// A table or output address at or above 2^OAS.
    AddressSize,
    /// A leaf with AF = 0.
    AccessFlag,
    /// RES0 bits set in a descriptor (below the OA of a block, [49:48], [g-1:12] of a table
    /// address, ...). Not an architectural fault (the encoding is not defined; QEMU masks
    /// the bits): the walker reports it because the engine must never write one.
    Res0,
    /// The descriptor read itself failed (outside memory): an external abort on the walk.
    External,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Translation => "translation fault",
            FaultKind::AddressSize => "address size fault",
            FaultKind::AccessFlag => "access flag fault",
            FaultKind::Res0 => "RES0 bits set",
            FaultKind::External => "external abort on walk",
        })
    }
}

/// One decoded descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    Invalid,
    /// Next-level table at `addr`; `extra` holds every other bit (hierarchical attributes
    /// [63:59], ignored bits [58:51] and [11:2]), all zero for the tables SEMANTICS.md allows.
    Table {
        addr: u64,
        extra: u64,
    },
    /// Block or page: output address of its first byte and its attributes.
    Leaf {
        oa: u64,
        attrs: LeafAttrs,
    },
}

/// Bits [hi:lo] set (inclusive; empty when hi < lo).
pub const fn bits(hi: u32, lo: u32) -> u64 {
    if hi < lo {
        0
    } else {
        (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
    }
}

/// The address field of table and leaf descriptors ends at bit 47 (no LPA).
const OA_HI: u32 = 47;
/// Type bits [1:0].
const TYPE: u64 = 0b11;

/// Decodes descriptor `d` read at `level`, or says which fault it raises.
pub fn decode(p: &WalkParams, level: u32, d: u64) -> Result<Descriptor, FaultKind> {
    if d & 1 == 0 {
        return Ok(Descriptor::Invalid);
    }
    let is_table_or_page = d & TYPE == TYPE;
    if level == 3 {
        if !is_table_or_page {
            // L3 `01`: reserved, behaves as invalid (ARM-FACTS §1).
            return Err(FaultKind::Translation);
        }
        return decode_leaf(p, level, d);
    }
    if is_table_or_page {
        let addr_field = bits(OA_HI, p.g);
        let res0 = bits(p.g - 1, 12) | bits(50, 48);
        if d & res0 != 0 {
            return Err(FaultKind::Res0);
        }
        let addr = d & addr_field;
        if addr >> p.oas != 0 {
            return Err(FaultKind::AddressSize);
        }
        return Ok(Descriptor::Table {
            addr,
            extra: d & !(addr_field | TYPE),
        });
    }
    if !p.block_allowed(level) {
        return Err(FaultKind::Translation);
    }
    decode_leaf(p, level, d)
}

fn decode_leaf(p: &WalkParams, level: u32, d: u64) -> Result<Descriptor, FaultKind> {
    let shift = p.shift(level);
    // Below the OA: [shift-1:12] (pages: [g-1:12], empty for 4K; blocks also cover nT
    // bit 16, RES0 without FEAT_BBM; 64K [15:12] are OA[51:48] only with FEAT_LPA).
    // Bits [49:48] are RES0 without LPA2; at stage 2 also [11] (FnXS without FEAT_XS)
    // and [50].
    let mut res0 = bits(shift - 1, 12) | bits(49, 48);
    if p.stage2 {
        res0 |= (1 << 11) | (1 << 50);
    }
    if d & res0 != 0 {
        return Err(FaultKind::Res0);
    }
    let oa = d & bits(OA_HI, shift);
    if oa >> p.oas != 0 {
        return Err(FaultKind::AddressSize);
    }
    let attrs = if p.stage2 {
        LeafAttrs::S2(S2Attrs::decode(d))
    } else {
        LeafAttrs::S1(S1Attrs::decode(d))
    };
    Ok(Descriptor::Leaf { oa, attrs })
}
