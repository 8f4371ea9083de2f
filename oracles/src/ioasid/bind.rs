//! The binding rules (`docs/IOASID.md`, "Binding"), as the model's own state: a map from
//! PASID to domain. Translation asks the caller for the page-table model's lookup.

use ptfuzz_engine::ioasid::{DomainId, Reason};
use ptfuzz_engine::ErrorKind;

use super::{IoasidModel, Refusal, Rule};

impl IoasidModel {
    /// Binds `id` to `dom`; `Ok(previous)` (a rebind replaces).
    pub fn bind(&mut self, id: u32, dom: DomainId) -> Result<Option<DomainId>, Refusal> {
        self.lookup(id)?;
        match self.bindings.get(&id) {
            Some(&d) if d == dom => Err(Refusal::new(
                ErrorKind::Exists,
                Reason::AlreadyBound,
                Rule::B2OneDomainPerPasid,
            )),
            _ => Ok(self.bindings.insert(id, dom)),
        }
    }

    fn not_bound() -> Refusal {
        Refusal::new(
            ErrorKind::Inval,
            Reason::NotBound,
            Rule::B3TranslateThroughBinding,
        )
    }

    pub fn unbind(&mut self, id: u32) -> Result<DomainId, Refusal> {
        self.lookup(id)?;
        self.bindings.remove(&id).ok_or_else(Self::not_bound)
    }

    /// Every binding, by ascending ID.
    pub fn bindings(&self) -> Vec<(u32, DomainId)> {
        self.bindings.iter().map(|(&k, &v)| (k, v)).collect()
    }

    /// `lookup(domain, iova)`: the page-table model's answer for the bound domain.
    pub fn translate(
        &self,
        id: u32,
        iova: u64,
        lookup: impl FnOnce(DomainId, u64) -> Option<u64>,
    ) -> Result<Option<u64>, Refusal> {
        self.lookup(id)?;
        let dom = *self.bindings.get(&id).ok_or_else(Self::not_bound)?;
        Ok(lookup(dom, iova))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptfuzz_engine::ioasid::IoasidSet;

    #[test]
    fn binding_rules() {
        let mut m = IoasidModel::new();
        let id = m.alloc(IoasidSet(0), 0, 3, 0).unwrap();
        let t = |d: DomainId, iova: u64| Some(((d.0 as u64) << 32) | iova);
        assert_eq!(
            m.translate(id, 5, t).unwrap_err().rule,
            Rule::B3TranslateThroughBinding
        );
        assert_eq!(m.bind(id, DomainId(1)), Ok(None));
        assert_eq!(m.translate(id, 5, t), Ok(Some((1 << 32) | 5)));
        assert_eq!(
            m.bind(id, DomainId(1)).unwrap_err().rule,
            Rule::B2OneDomainPerPasid
        );
        assert_eq!(m.bind(id, DomainId(2)), Ok(Some(DomainId(1))));
        let busy = m.free(id).unwrap_err();
        assert_eq!(
            (busy.kind, busy.rule),
            (ErrorKind::Busy, Rule::B1BoundIdsStay)
        );
        assert_eq!(m.unbind(id), Ok(DomainId(2)));
        assert_eq!(m.unbind(id).unwrap_err().reason, Reason::NotBound);
        m.free(id).unwrap();
        assert_eq!(
            m.bind(id, DomainId(1)).unwrap_err().reason,
            Reason::UnknownId
        );
    }
}
