//! Decoded leaf attributes (ARM-FACTS §4 "Stage-1/Stage-2 leaf attributes"), and the ones a
//! prot must produce (docs/SEMANTICS.md "Descriptors", i.e. Linux `arm_lpae_prot_to_pte`).

use std::fmt;

use ptfuzz_engine::prot::Prot;

use super::short::ShortAttrs;

/// Stage-1 leaf attributes, every field the descriptor has (bit numbers in comments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S1Attrs {
    /// [4:2] MAIR byte index.
    pub attr_indx: u8,
    /// [5]
    pub ns: bool,
    /// [6] AP[1]: unprivileged access allowed.
    pub ap_unpriv: bool,
    /// [7] AP[2]: read-only.
    pub ap_ro: bool,
    /// [9:8] 00 non-shareable, 10 outer, 11 inner.
    pub sh: u8,
    /// [10]
    pub af: bool,
    /// [11]
    pub ng: bool,
    /// [50] guarded page (BTI).
    pub gp: bool,
    /// [51]
    pub dbm: bool,
    /// [52]
    pub contiguous: bool,
    /// [53]
    pub pxn: bool,
    /// [54] UXN / XN.
    pub uxn: bool,
    /// [58:55] software.
    pub sw: u8,
    /// [63:59] PBHA and ignored.
    pub upper: u8,
}

/// Stage-2 leaf attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S2Attrs {
    /// [5:2] MemAttr (no FWB): 0001 Device-nGnRE, 0101 Normal NC, 1111 Normal WB.
    pub mem_attr: u8,
    /// [7:6] S2AP: bit 6 read, bit 7 write.
    pub s2ap: u8,
    /// [9:8]
    pub sh: u8,
    /// [10]
    pub af: bool,
    /// [51]
    pub dbm: bool,
    /// [52]
    pub contiguous: bool,
    /// [54:53] XN (FEAT_XNX encoding; 0b11 = what Linux writes for no-exec).
    pub xn: u8,
    /// [58:55] software.
    pub sw: u8,
    /// [63:59]
    pub upper: u8,
}

/// Attributes of one leaf, by stage (LPAE) or format (Armv7 short descriptors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafAttrs {
    S1(S1Attrs),
    S2(S2Attrs),
    Short(ShortAttrs),
}

pub const SH_NONE: u8 = 0b00;
pub const SH_OUTER: u8 = 0b10;
pub const SH_INNER: u8 = 0b11;

/// MAIR indices Linux programs (MAIR = 0xf404ff44).
pub const ATTR_IDX_NC: u8 = 0;
pub const ATTR_IDX_CACHE: u8 = 1;
pub const ATTR_IDX_DEV: u8 = 2;

pub const MEMATTR_DEV: u8 = 0b0001;
pub const MEMATTR_NC: u8 = 0b0101;
pub const MEMATTR_WB: u8 = 0b1111;

fn bit(d: u64, n: u32) -> bool {
    (d >> n) & 1 == 1
}

fn field(d: u64, lo: u32, width: u32) -> u8 {
    ((d >> lo) & ((1 << width) - 1)) as u8
}

impl S1Attrs {
    pub fn decode(d: u64) -> S1Attrs {
        S1Attrs {
            attr_indx: field(d, 2, 3),
            ns: bit(d, 5),
            ap_unpriv: bit(d, 6),
            ap_ro: bit(d, 7),
            sh: field(d, 8, 2),
            af: bit(d, 10),
            ng: bit(d, 11),
            gp: bit(d, 50),
            dbm: bit(d, 51),
            contiguous: bit(d, 52),
            pxn: bit(d, 53),
            uxn: bit(d, 54),
            sw: field(d, 55, 4),
            upper: field(d, 59, 5),
        }
    }
}

impl S2Attrs {
    pub fn decode(d: u64) -> S2Attrs {
        S2Attrs {
            mem_attr: field(d, 2, 4),
            s2ap: field(d, 6, 2),
            sh: field(d, 8, 2),
            af: bit(d, 10),
            dbm: bit(d, 51),
            contiguous: bit(d, 52),
            xn: field(d, 53, 2),
            sw: field(d, 55, 4),
            upper: field(d, 59, 5),
        }
    }
}

impl LeafAttrs {
    pub fn af(&self) -> bool {
        match self {
            LeafAttrs::S1(a) => a.af,
            LeafAttrs::S2(a) => a.af,
            LeafAttrs::Short(a) => a.af,
        }
    }

    /// The attributes docs/SEMANTICS.md "Descriptors" says a leaf mapped with `prot` has.
    /// Normalised as the hardware sees it: stage 2 has no privilege bit (`p` is ignored);
    /// at stage 1 AP[2]=0 means read/write, so `w` alone reads as `rw`. Shareability is inner
    /// exactly when `c` is given, also together with `m` (Linux: `prot & IOMMU_CACHE` -> SH_IS).
    pub fn expected(prot: Prot, stage2: bool) -> LeafAttrs {
        let has = |p| prot.contains(p);
        let sh = if has(Prot::CACHE) { SH_INNER } else { SH_OUTER };
        if stage2 {
            LeafAttrs::S2(S2Attrs {
                mem_attr: if has(Prot::MMIO) {
                    MEMATTR_DEV
                } else if has(Prot::CACHE) {
                    MEMATTR_WB
                } else {
                    MEMATTR_NC
                },
                s2ap: (has(Prot::READ) as u8) | ((has(Prot::WRITE) as u8) << 1),
                sh,
                af: true,
                xn: if has(Prot::EXEC) { 0 } else { 0b11 },
                ..S2Attrs::default()
            })
        } else {
            LeafAttrs::S1(S1Attrs {
                attr_indx: if has(Prot::MMIO) {
                    ATTR_IDX_DEV
                } else if has(Prot::CACHE) {
                    ATTR_IDX_CACHE
                } else {
                    ATTR_IDX_NC
                },
                ap_unpriv: !has(Prot::PRIV),
                ap_ro: !has(Prot::WRITE),
                sh,
                af: true,
                ng: true,
                pxn: !has(Prot::EXEC),
                uxn: !has(Prot::EXEC),
                ..S1Attrs::default()
            })
        }
    }
}

fn sh_name(sh: u8) -> &'static str {
    match sh {
        SH_NONE => "nsh",
        SH_OUTER => "osh",
        SH_INNER => "ish",
        _ => "sh01",
    }
}

impl fmt::Display for LeafAttrs {
    /// Compact: the decoded permissions first, then every attribute field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeafAttrs::S1(a) => {
                let rw = if a.ap_ro { "ro" } else { "rw" };
                let who = if a.ap_unpriv { "any" } else { "priv" };
                write!(
                    f,
                    "s1[{rw} {who} attrindx={} {} af={} ng={} pxn={} uxn={}",
                    a.attr_indx,
                    sh_name(a.sh),
                    a.af as u8,
                    a.ng as u8,
                    a.pxn as u8,
                    a.uxn as u8
                )?;
                if a.ns || a.gp || a.dbm || a.contiguous || a.sw != 0 || a.upper != 0 {
                    write!(
                        f,
                        " ns={} gp={} dbm={} cont={} sw={:#x} upper={:#x}",
                        a.ns as u8, a.gp as u8, a.dbm as u8, a.contiguous as u8, a.sw, a.upper
                    )?;
                }
                f.write_str("]")
            }
            LeafAttrs::S2(a) => {
                write!(
                    f,
                    "s2[s2ap={}{} memattr={:#06b} {} af={} xn={:#04b}",
                    if a.s2ap & 1 != 0 { "r" } else { "-" },
                    if a.s2ap & 2 != 0 { "w" } else { "-" },
                    a.mem_attr,
                    sh_name(a.sh),
                    a.af as u8,
                    a.xn
                )?;
                if a.dbm || a.contiguous || a.sw != 0 || a.upper != 0 {
                    write!(
                        f,
                        " dbm={} cont={} sw={:#x} upper={:#x}",
                        a.dbm as u8, a.contiguous as u8, a.sw, a.upper
                    )?;
                }
                f.write_str("]")
            }
            LeafAttrs::Short(a) => a.fmt(f),
        }
    }
}
