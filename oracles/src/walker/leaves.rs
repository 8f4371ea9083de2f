//! Model -> tables: every model leaf translates to the model's output address with the
//! attributes its prot implies; every address the model leaves unmapped faults.

use ptfuzz_engine::prot::Prot;

use super::attrs::LeafAttrs;
use super::descriptor::FaultKind;
use super::params::WalkParams;
use super::translate::{translate, Translation};
use crate::divergence::Divergence;
use crate::finding::{ModelLeaf, WalkerFinding};
use crate::model::Model;

/// One walk of the device view.
pub(crate) struct Walker<'a, R: Fn(u64) -> Option<u64>> {
    pub p: &'a WalkParams,
    pub root: u64,
    pub read: R,
}

impl<R: Fn(u64) -> Option<u64>> Walker<'_, R> {
    fn walk(&self, iova: u64) -> Result<Translation, super::translate::Fault> {
        translate(self.p, self.root, iova, &self.read)
    }

    /// The byte `iova` of the model leaf (start, pa, size, prot) translates exactly.
    pub fn check_mapped(
        &self,
        iova: u64,
        (start, pa, size, prot): (u64, u64, u64, Prot),
    ) -> Result<(), Divergence> {
        let want_pa = pa + (iova - start);
        let want_attrs = LeafAttrs::expected(prot, self.p.stage2);
        let leaf = ModelLeaf {
            start,
            pa,
            size,
            prot,
        };
        let t = self
            .walk(iova)
            .map_err(|actual| WalkerFinding::MappedFaults {
                iova,
                expected_pa: want_pa,
                leaf,
                actual,
            })?;
        let (expected_pa, expected_attrs, actual) = (want_pa, want_attrs, t);
        Err(Divergence::new(if t.pa != want_pa {
            WalkerFinding::LeafOutputAddress {
                iova,
                expected_pa,
                leaf,
                expected_attrs,
                actual,
            }
        } else if t.size != size || t.leaf_iova != start {
            WalkerFinding::LeafSize {
                iova,
                expected_pa,
                leaf,
                expected_attrs,
                actual,
            }
        } else if t.attrs != want_attrs {
            WalkerFinding::LeafAttributes {
                iova,
                expected_pa,
                leaf,
                expected_attrs,
                actual,
            }
        } else if t.table_extra != 0 {
            WalkerFinding::TableDescriptorBits {
                iova,
                expected_pa,
                leaf,
                actual,
                table_bits: t.table_extra,
            }
        } else {
            return Ok(());
        }))
    }

    /// `iova` is not mapped in the model, so the walk must end in a translation fault.
    pub fn check_unmapped(&self, iova: u64) -> Result<(), Divergence> {
        match self.walk(iova) {
            Err(f) if f.kind == FaultKind::Translation => Ok(()),
            Err(actual) => Err(WalkerFinding::UnmappedWrongFault { iova, actual }.into()),
            Ok(actual) => Err(WalkerFinding::UnmappedTranslates { iova, actual }.into()),
        }
    }

    /// Any byte address: mapped or unmapped as the model says.
    pub fn check_iova(&self, model: &Model, iova: u64) -> Result<(), Divergence> {
        match model.leaf_at(iova) {
            Some(leaf) => self.check_mapped(iova, leaf),
            None => self.check_unmapped(iova),
        }
    }

    /// A model leaf at its first byte, a middle byte and its last byte, and its neighbours
    /// just below and above when the model leaves them unmapped.
    pub fn check_leaf(&self, model: &Model, leaf: (u64, u64, u64, Prot)) -> Result<(), Divergence> {
        let (start, _, size, _) = leaf;
        let mid = 0x5555_5555_5555_5555 & (size - 1);
        for off in [0, mid, size - 1] {
            self.check_mapped(start + off, leaf)?;
        }
        if let Some(below) = start.checked_sub(1) {
            if model.leaf_at(below).is_none() {
                self.check_unmapped(below)?;
            }
        }
        let above = start + size;
        if above >> self.p.ias == 0 && model.leaf_at(above).is_none() {
            self.check_unmapped(above)?;
        }
        Ok(())
    }
}
