//! Walks one input address from a root through a memory-read callback, as an SMMU would.

use std::fmt;

use super::attrs::LeafAttrs;
use super::descriptor::{decode, Descriptor, FaultKind};
use super::params::WalkParams;

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output address of the input byte.
    pub pa: u64,
    /// Level of the leaf descriptor.
    pub level: u32,
    /// Bytes the leaf maps.
    pub size: u64,
    /// Input address of the leaf's first byte.
    pub leaf_iova: u64,
    pub attrs: LeafAttrs,
    /// The raw leaf descriptor.
    pub desc: u64,
    /// Address the leaf descriptor was read from.
    pub desc_pa: u64,
    /// OR of the non-address, non-type bits of every table descriptor on the way
    /// (hierarchical attributes, ignored bits): zero for the tables SEMANTICS.md allows.
    pub table_extra: u64,
}

/// A walk that stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub level: u32,
    /// Where the faulting descriptor was read from (None: before any read).
    pub desc_pa: Option<u64>,
    /// The faulting descriptor, if one was read.
    pub desc: Option<u64>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at L{}", self.kind, self.level)?;
        if let Some(pa) = self.desc_pa {
            write!(f, " (descriptor at {pa:#x}")?;
            if let Some(d) = self.desc {
                write!(f, " = {d:#018x}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Translation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pa {:#x} via L{} leaf of {:#x} at iova {:#x} {} (descriptor at {:#x} = {:#018x})",
            self.pa, self.level, self.size, self.leaf_iova, self.attrs, self.desc_pa, self.desc
        )
    }
}

/// Translates `iova` through the tables at `root`. `read(pa)` returns the 8-byte word at
/// `pa` (the device's view), or None if nothing is there (an external abort).
pub fn translate<R>(p: &WalkParams, root: u64, iova: u64, read: R) -> Result<Translation, Fault>
where
    R: Fn(u64) -> Option<u64>,
{
    let fault = |kind, level, desc_pa, desc| Fault {
        kind,
        level,
        desc_pa,
        desc,
    };
    if p.ias >= 64 || iova >> p.ias != 0 {
        return Err(fault(FaultKind::Translation, p.start_level, None, None));
    }
    // A root (TTB) beyond the output address size: address size fault before any read.
    if root >> p.oas != 0 {
        return Err(fault(FaultKind::AddressSize, p.start_level, None, None));
    }
    let mut table = root;
    let mut table_extra = 0;
    for level in p.start_level..=3 {
        let desc_pa = table + 8 * p.index(iova, level);
        let d = read(desc_pa).ok_or(fault(FaultKind::External, level, Some(desc_pa), None))?;
        let f = |kind| fault(kind, level, Some(desc_pa), Some(d));
        match decode(p, level, d).map_err(f)? {
            Descriptor::Invalid => return Err(f(FaultKind::Translation)),
            Descriptor::Table { addr, extra } => {
                table = addr;
                table_extra |= extra;
            }
            Descriptor::Leaf { oa, attrs } => {
                if !attrs.af() {
                    return Err(f(FaultKind::AccessFlag));
                }
                let size = 1u64 << p.shift(level);
                let off = iova & (size - 1);
                return Ok(Translation {
                    pa: oa | off,
                    level,
                    size,
                    leaf_iova: iova - off,
                    attrs,
                    desc: d,
                    desc_pa,
                    table_extra,
                });
            }
        }
    }
    // Level 3 never decodes to a table, so only a start level above 3 gets here.
    Err(fault(FaultKind::Translation, p.start_level, None, None))
}
