//! PASID binding: an outstanding IOASID used as a PASID names one page-table domain, and a
//! DMA tagged with it translates through that domain's tables.
//!
//! Choices (docs/IOASID.md, "Binding"):
//! * only an outstanding ID (in the active space) can be bound: else `inval` (`UnknownId`);
//! * binding a bound ID to *another* domain replaces the binding in one step (as Linux's
//!   `iommu_replace_device_pasid`: no window where the PASID translates through nothing);
//!   binding it to the domain it already has is `exists` (`AlreadyBound`);
//! * `free` of a bound ID is refused with `busy` (`Bound`): freeing it would leave a live
//!   PASID table entry naming an ID the allocator may hand out again;
//! * `unbind` or `translate` of an outstanding but unbound ID is `inval` (`NotBound`).
//!
//! The framework does not own domains: it records a [`DomainId`] and `translate` asks the
//! caller to look the address up in that domain.

use super::{Ioasid, IoasidError, Reason};

/// Which page-table domain a PASID is bound to (an index the caller gives meaning to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u32);

impl Ioasid {
    fn require_outstanding(&self, id: u32) -> Result<(), IoasidError> {
        if self.active_space().contains_key(&id) {
            Ok(())
        } else {
            Err(Reason::UnknownId.into())
        }
    }

    /// Binds `id` to `dom`; returns the domain it was bound to before, if any (a rebind).
    pub fn bind(&mut self, id: u32, dom: DomainId) -> Result<Option<DomainId>, IoasidError> {
        self.require_outstanding(id)?;
        if self.bindings.get(&id) == Some(&dom) {
            return Err(Reason::AlreadyBound.into());
        }
        Ok(self.bindings.insert(id, dom))
    }

    /// Removes `id`'s binding; returns the domain it was bound to.
    pub fn unbind(&mut self, id: u32) -> Result<DomainId, IoasidError> {
        self.require_outstanding(id)?;
        self.bindings
            .remove(&id)
            .ok_or_else(|| Reason::NotBound.into())
    }

    /// The domain `id` is bound to, if any.
    pub fn bound(&self, id: u32) -> Option<DomainId> {
        self.bindings.get(&id).copied()
    }

    /// Every binding, by ascending ID.
    pub fn bindings(&self) -> Vec<(u32, DomainId)> {
        self.bindings.iter().map(|(&k, &v)| (k, v)).collect()
    }

    /// Translates `iova` for PASID `id`: `lookup(domain, iova)` in the domain it is bound to
    /// (`Ok(None)`: bound, but nothing mapped there).
    pub fn translate(
        &self,
        id: u32,
        iova: u64,
        lookup: impl FnOnce(DomainId, u64) -> Option<u64>,
    ) -> Result<Option<u64>, IoasidError> {
        self.require_outstanding(id)?;
        let dom = self.bound(id).ok_or(Reason::NotBound)?;
        Ok(lookup(dom, iova))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ioasid::{IoasidSet, OpsId, ScriptedOps};

    const S: IoasidSet = IoasidSet(1);

    fn table(d: DomainId, iova: u64) -> Option<u64> {
        (iova < 0x1000).then_some(0x4000_0000 * (d.0 as u64 + 1) + iova)
    }

    #[test]
    fn bind_translate_unbind() {
        let mut io = Ioasid::new();
        let id = io.alloc(S, 1, 9, 0).unwrap();
        assert_eq!(io.translate(id, 0x10, table), Err(Reason::NotBound.into()));
        assert_eq!(io.bind(id, DomainId(0)), Ok(None));
        assert_eq!(io.translate(id, 0x10, table), Ok(Some(0x4000_0010)));
        assert_eq!(io.translate(id, 0x1000, table), Ok(None));
        assert_eq!(io.bind(id, DomainId(0)), Err(Reason::AlreadyBound.into()));
        assert_eq!(
            io.bind(id, DomainId(1)),
            Ok(Some(DomainId(0))),
            "rebind replaces"
        );
        assert_eq!(io.translate(id, 0x10, table), Ok(Some(0x8000_0010)));
        assert_eq!(io.unbind(id), Ok(DomainId(1)));
        assert_eq!(io.unbind(id), Err(Reason::NotBound.into()));
        assert_eq!(io.bind(id + 1, DomainId(0)), Err(Reason::UnknownId.into()));
        assert_eq!(
            io.translate(id + 1, 0, table),
            Err(Reason::UnknownId.into())
        );
        io.check_consistency().unwrap();
    }

    #[test]
    fn bound_ids_are_not_freed_and_keep_their_group() {
        let mut io = Ioasid::new();
        io.register_allocator(Box::new(ScriptedOps::new(OpsId(1), vec![])), 0)
            .unwrap();
        let id = io.alloc(S, 0, 9, 0).unwrap();
        io.bind(id, DomainId(3)).unwrap();
        let e = io.free(id).unwrap_err();
        assert_eq!((e.kind, e.reason), (ErrorKind::Busy, Reason::Bound));
        assert_eq!(io.ops(OpsId(1)).unwrap().calls().len(), 1, "no free call");
        assert_eq!(
            io.unregister_allocator(OpsId(1), 0),
            Err(Reason::GroupBusy.into())
        );
        io.unbind(id).unwrap();
        io.free(id).unwrap();
        io.check_consistency().unwrap();
        assert!(io.bindings().is_empty());
    }
}
