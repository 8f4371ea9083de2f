//! What a device's DMA at an input address should do, predicted from the reference model
//! alone (never from the tables): the output address, or the fault an SMMUv3 must report.
//!
//! Permissions follow io-pgtable-arm's encoding of `prot` and the Arm rules for an
//! unprivileged, non-PASID PCIe access (which is what an edu DMA is):
//! - stage 1: AP[2] makes a leaf read-only when it has `r` without `w`; a leaf without `p`
//!   has AP[1] = 1 (unprivileged access allowed); a privileged-only leaf faults on any
//!   unprivileged access (QEMU ignores AP[1]: a known deviation);
//! - stage 2: S2AP read iff `r`, write iff `w`.

use ptfuzz_engine::Prot;

use crate::model::Model;

/// A device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "r",
            Access::Write => "w",
        }
    }
}

/// SMMUv3 event types the oracle predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Translation,
    AddrSize,
    AccessFlag,
    Permission,
}

impl FaultKind {
    /// The event record's type byte.
    pub fn event_type(self) -> u8 {
        match self {
            FaultKind::Translation => 0x10,
            FaultKind::AddrSize => 0x11,
            FaultKind::AccessFlag => 0x12,
            FaultKind::Permission => 0x13,
        }
    }

    pub fn from_event_type(t: u8) -> Option<FaultKind> {
        [
            FaultKind::Translation,
            FaultKind::AddrSize,
            FaultKind::AccessFlag,
            FaultKind::Permission,
        ]
        .into_iter()
        .find(|k| k.event_type() == t)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Translation => "translation",
            FaultKind::AddrSize => "addr_size",
            FaultKind::AccessFlag => "access",
            FaultKind::Permission => "permission",
        }
    }

    pub fn from_name(s: &str) -> Option<FaultKind> {
        [
            FaultKind::Translation,
            FaultKind::AddrSize,
            FaultKind::AccessFlag,
            FaultKind::Permission,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// A predicted or observed fault: kind and the stage that raised it (CLASS is always IN
/// here: the oracle never unmaps the tables a stage-1 walk fetches through stage 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    pub kind: FaultKind,
    pub stage2: bool,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fault={} stage={}",
            self.kind.name(),
            if self.stage2 { 2 } else { 1 }
        )
    }
}

/// The predicted result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expected {
    /// The access reaches this physical address.
    Pa(u64),
    Fault(Fault),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Pa(pa) => write!(f, "pa={pa:#x}"),
            Expected::Fault(x) => x.fmt(f),
        }
    }
}

/// Whether a stage-1 leaf with `prot` lets an unprivileged device access through.
pub fn stage1_allows(prot: Prot, access: Access) -> bool {
    if prot.contains(Prot::PRIV) {
        return false;
    }
    match access {
        Access::Read => true,
        // io-pgtable sets AP[2] (read-only) only for r without w; w alone maps read-write.
        Access::Write => prot.writable(),
    }
}

/// Whether a stage-2 leaf with `prot` allows the access.
pub fn stage2_allows(prot: Prot, access: Access) -> bool {
    match access {
        Access::Read => prot.readable(),
        Access::Write => prot.writable(),
    }
}

/// One translation stage as the model sees it.
#[derive(Clone, Copy)]
pub struct Stage<'a> {
    pub model: &'a Model,
    pub stage2: bool,
}

impl Stage<'_> {
    fn translate(&self, addr: u64, access: Access, ignore_ap1: bool) -> Result<(u64, Prot), Fault> {
        let fault = |kind| Fault {
            kind,
            stage2: self.stage2,
        };
        let (start, pa, _size, prot) = self
            .model
            .leaf_at(addr)
            .ok_or(fault(FaultKind::Translation))?;
        let allowed = if self.stage2 {
            stage2_allows(prot, access)
        } else if ignore_ap1 {
            stage1_allows(
                Prot::from_bits_truncate(prot.bits() & !Prot::PRIV.bits()),
                access,
            )
        } else {
            stage1_allows(prot, access)
        };
        if !allowed {
            return Err(fault(FaultKind::Permission));
        }
        Ok((pa + (addr - start), prot))
    }
}

/// The prediction for `access` at `iova` through `first` and, for a nested stream, then
/// through `second` (the stage-2 domain translating the stage-1 output).
pub fn predict(first: Stage<'_>, second: Option<Stage<'_>>, iova: u64, access: Access) -> Expected {
    predict_with(first, second, iova, access, false)
}

/// The prediction of an SMMU that ignores stage-1 AP[1] (as QEMU does): what a
/// privileged-only leaf then gives, for telling that deviation apart.
pub fn predict_ignoring_ap1(
    first: Stage<'_>,
    second: Option<Stage<'_>>,
    iova: u64,
    access: Access,
) -> Expected {
    predict_with(first, second, iova, access, true)
}

fn predict_with(
    first: Stage<'_>,
    second: Option<Stage<'_>>,
    iova: u64,
    access: Access,
    ignore_ap1: bool,
) -> Expected {
    let out = first
        .translate(iova, access, ignore_ap1)
        .and_then(|(ipa, _)| match second {
            Some(s2) => s2.translate(ipa, access, false).map(|(pa, _)| pa),
            None => Ok(ipa),
        });
    match out {
        Ok(pa) => Expected::Pa(pa),
        Err(f) => Expected::Fault(f),
    }
}
