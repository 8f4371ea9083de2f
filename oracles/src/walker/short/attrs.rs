//! Armv7 short-descriptor leaf attributes (ARM-FACTS.md §8), decoded into one shape for all
//! four leaf kinds, and the ones a prot must produce (docs/SEMANTICS.md "Armv7 short
//! descriptor", i.e. Linux `arm_v7s_prot_to_pte`). Written from the architecture's bit
//! layout, never from the engine's `format/v7s.rs`.

use std::fmt;

use ptfuzz_engine::prot::Prot;

/// The four leaf kinds, which place the same fields at different bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortLeafKind {
    /// Level 1, type `1x`, bit 18 clear: 1 MiB.
    Section,
    /// Level 1, type `1x`, bit 18 set: 16 MiB, repeated in 16 slots.
    Supersection,
    /// Level 2, type `01`: 64 KiB, repeated in 16 slots.
    Large,
    /// Level 2, type `1x`: 4 KiB.
    Small,
}

impl ShortLeafKind {
    /// The kind of the valid leaf descriptor `d` at `level` (1 or 2), or None for a fault
    /// or a level-1 page-table descriptor.
    pub fn of(level: u32, d: u32) -> Option<ShortLeafKind> {
        match (level, d & 3) {
            (_, 0) | (1, 1) => None,
            (1, _) if d & 1 << 18 != 0 => Some(ShortLeafKind::Supersection),
            (1, _) => Some(ShortLeafKind::Section),
            (_, 1) => Some(ShortLeafKind::Large),
            _ => Some(ShortLeafKind::Small),
        }
    }

    /// log2 of the bytes the leaf maps.
    pub fn size_log2(self) -> u32 {
        match self {
            ShortLeafKind::Section => 20,
            ShortLeafKind::Supersection => 24,
            ShortLeafKind::Large => 16,
            ShortLeafKind::Small => 12,
        }
    }

    /// Whether the descriptor fills a 16-aligned group of 16 slots.
    pub fn repeated(self) -> bool {
        matches!(self, ShortLeafKind::Supersection | ShortLeafKind::Large)
    }

    /// The output-address bits of the descriptor (supersection: PA[31:24] only; its
    /// extended-PA fields are in [`ShortAttrs::sbz`]).
    pub fn addr_mask(self) -> u32 {
        match self {
            ShortLeafKind::Section => 0xfff0_0000,
            ShortLeafKind::Supersection => 0xff00_0000,
            ShortLeafKind::Large => 0xffff_0000,
            ShortLeafKind::Small => 0xffff_f000,
        }
    }
}

/// Every attribute field of a short-descriptor leaf (bit numbers: section / large page /
/// small page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShortAttrs {
    /// B: 2 / 2 / 2.
    pub b: bool,
    /// C: 3 / 3 / 3.
    pub c: bool,
    /// TEX: [14:12] / [14:12] / [8:6].
    pub tex: u8,
    /// AP[0], the access flag in the simplified model: 10 / 4 / 4.
    pub af: bool,
    /// AP[1], unprivileged access: 11 / 5 / 5.
    pub unpriv: bool,
    /// AP[2], read-only: 15 / 9 / 9.
    pub ro: bool,
    /// S, shareable: 16 / 10 / 10.
    pub s: bool,
    /// nG, not global: 17 / 11 / 11.
    pub ng: bool,
    /// XN: 4 / 15 / 0.
    pub xn: bool,
    /// PXN: section and supersection bit 0 (type `11`).
    pub pxn: bool,
    /// NS: section and supersection bit 19.
    pub ns: bool,
    /// Domain: section [8:5] (a supersection has none there).
    pub domain: u8,
    /// Set bits that are no field the semantics use: section bit 9 (implementation
    /// defined), supersection extended PA [23:20] and [8:5] and bit 9, large page [8:6]
    /// (SBZ). In place, so a message shows where they are.
    pub sbz: u32,
}

fn bit(d: u32, n: u32) -> bool {
    (d >> n) & 1 == 1
}

fn field(d: u32, lo: u32, width: u32) -> u8 {
    ((d >> lo) & ((1 << width) - 1)) as u8
}

impl ShortAttrs {
    /// The attributes of the leaf descriptor `d` of kind `kind`.
    pub fn decode(kind: ShortLeafKind, d: u32) -> ShortAttrs {
        match kind {
            ShortLeafKind::Section | ShortLeafKind::Supersection => {
                let sbz = if kind == ShortLeafKind::Section {
                    d & 1 << 9
                } else {
                    d & (0x00f0_0000 | 0xf << 5 | 1 << 9)
                };
                ShortAttrs {
                    pxn: bit(d, 0),
                    b: bit(d, 2),
                    c: bit(d, 3),
                    xn: bit(d, 4),
                    domain: if kind == ShortLeafKind::Section {
                        field(d, 5, 4)
                    } else {
                        0
                    },
                    af: bit(d, 10),
                    unpriv: bit(d, 11),
                    tex: field(d, 12, 3),
                    ro: bit(d, 15),
                    s: bit(d, 16),
                    ng: bit(d, 17),
                    ns: bit(d, 19),
                    sbz,
                }
            }
            ShortLeafKind::Large | ShortLeafKind::Small => {
                let large = kind == ShortLeafKind::Large;
                ShortAttrs {
                    b: bit(d, 2),
                    c: bit(d, 3),
                    af: bit(d, 4),
                    unpriv: bit(d, 5),
                    tex: if large {
                        field(d, 12, 3)
                    } else {
                        field(d, 6, 3)
                    },
                    ro: bit(d, 9),
                    s: bit(d, 10),
                    ng: bit(d, 11),
                    xn: if large { bit(d, 15) } else { bit(d, 0) },
                    sbz: if large { d & 0b111 << 6 } else { 0 },
                    ..ShortAttrs::default()
                }
            }
        }
    }

    /// What docs/SEMANTICS.md "Armv7 short descriptor" says a leaf mapped with `prot` holds,
    /// the same for every kind: nG, S and AP[0] always; TEX 001 unless `m`; B for `m`, B
    /// and C for `c` without `m`; AP[1] unless `p`; AP[2] unless `w`; XN unless `x`; PXN,
    /// NS, domain and every other bit clear. `r` sets nothing (reads are always allowed).
    pub fn expected(prot: Prot) -> ShortAttrs {
        let has = |p| prot.contains(p);
        let mmio = has(Prot::MMIO);
        ShortAttrs {
            b: mmio || has(Prot::CACHE),
            c: !mmio && has(Prot::CACHE),
            tex: if mmio { 0 } else { 1 },
            af: true,
            unpriv: !has(Prot::PRIV),
            ro: !has(Prot::WRITE),
            s: true,
            ng: true,
            xn: !has(Prot::EXEC),
            ..ShortAttrs::default()
        }
    }
}

impl fmt::Display for ShortAttrs {
    /// Compact: permissions, memory type, then every other field that is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v7s[{} {} tex={} c={} b={} af={} s={} ng={} xn={}",
            if self.ro { "ro" } else { "rw" },
            if self.unpriv { "any" } else { "priv" },
            self.tex,
            self.c as u8,
            self.b as u8,
            self.af as u8,
            self.s as u8,
            self.ng as u8,
            self.xn as u8
        )?;
        if self.pxn || self.ns || self.domain != 0 || self.sbz != 0 {
            write!(
                f,
                " pxn={} ns={} domain={} sbz={:#x}",
                self.pxn as u8, self.ns as u8, self.domain, self.sbz
            )?;
        }
        f.write_str("]")
    }
}
