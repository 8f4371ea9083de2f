//! The IOASID reference model: the framework's rules (`docs/IOASID.md`) as an explicit state
//! machine. It shares only plain types with the engine (`IoasidSet`, `OpsId`, `Behaviour`,
//! `OpsCall`, `Reason`, `ErrorKind`) and predicts every return value with its own code.
//!
//! State: the active allocator (`Default` or `Custom(group)`), the groups in creation order
//! with their members, and one map of outstanding IDs, each with its owner (the default
//! allocator or a group), set and data. Every refusal names the rule that caused it.

mod allocator;
mod bind;

use std::collections::BTreeMap;
use std::fmt;

use ptfuzz_engine::ioasid::{
    Behaviour, DomainId, IoasidError, IoasidSet, OpsCall, OpsId, Reason, INVALID_IOASID,
};
use ptfuzz_engine::ErrorKind;

use allocator::AllocatorModel;

/// The rule (or check) behind a transition or a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    R1DefaultAlwaysAvailable,
    R2CustomTakesPrecedence,
    R3LastMemberNeedsFreedIds,
    R4SwitchWithinGroupKeepsIds,
    R5SwitchCustomDefaultNeedsEmptySpace,
    /// Argument checks of `alloc`.
    Arguments,
    /// Validation of an untrusted custom allocator's answer.
    UntrustedAnswer,
    /// `free`/`find`/`set_data` lookups.
    Lookup,
    /// Registration bookkeeping (duplicate or unknown registration).
    Registry,
    /// Binding 1: a bound PASID cannot be freed (unbind first).
    B1BoundIdsStay,
    /// Binding 2: one domain per PASID; rebinding to another domain replaces the binding,
    /// to the same domain is refused.
    B2OneDomainPerPasid,
    /// Binding 3: a PASID translates through its bound domain's tables, and only when bound.
    B3TranslateThroughBinding,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::R1DefaultAlwaysAvailable => "rule 1: the default allocator is always available",
            Rule::R2CustomTakesPrecedence => "rule 2: custom allocators take precedence",
            Rule::R3LastMemberNeedsFreedIds => {
                "rule 3: the last member of a shared group leaves only when its IDs are freed"
            }
            Rule::R4SwitchWithinGroupKeepsIds => "rule 4: switching within a group keeps IDs",
            Rule::R5SwitchCustomDefaultNeedsEmptySpace => {
                "rule 5: switching between custom and default needs an empty space"
            }
            Rule::Arguments => "alloc argument check",
            Rule::UntrustedAnswer => "untrusted custom allocator answer",
            Rule::Lookup => "lookup of an outstanding ID",
            Rule::Registry => "registration bookkeeping",
            Rule::B1BoundIdsStay => "binding 1: a bound PASID cannot be freed",
            Rule::B2OneDomainPerPasid => {
                "binding 2: one domain per PASID, a rebind replaces the binding"
            }
            Rule::B3TranslateThroughBinding => {
                "binding 3: a PASID translates through its bound domain only"
            }
        })
    }
}

/// A predicted refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: Reason,
    pub rule: Rule,
}

impl Refusal {
    fn new(kind: ErrorKind, reason: Reason, rule: Rule) -> Self {
        Refusal { kind, reason, rule }
    }

    pub fn matches(&self, e: &IoasidError) -> bool {
        self.kind == e.kind && self.reason == e.reason
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}) by {}", self.kind, self.reason, self.rule)
    }
}

/// Who allocated an outstanding ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Default,
    Group(OpsId),
}

/// The state machine's control state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelActive {
    Default,
    Custom(OpsId),
}

#[derive(Clone, Debug)]
struct ModelGroup {
    ops: OpsId,
    members: Vec<u64>,
    allocator: AllocatorModel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    pub owner: Owner,
    pub set: IoasidSet,
    pub data: u64,
}

/// The IOASID model.
#[derive(Clone, Debug)]
pub struct IoasidModel {
    active: ModelActive,
    groups: Vec<ModelGroup>,
    ids: BTreeMap<u32, ModelEntry>,
    /// PASID → domain (`bind.rs`).
    bindings: BTreeMap<u32, DomainId>,
}

impl Default for IoasidModel {
    fn default() -> Self {
        Self::new()
    }
}

impl IoasidModel {
    pub fn new() -> Self {
        IoasidModel {
            active: ModelActive::Default,
            groups: Vec::new(),
            ids: BTreeMap::new(),
            bindings: BTreeMap::new(),
        }
    }

    pub fn active(&self) -> ModelActive {
        self.active
    }

    fn owner(&self) -> Owner {
        match self.active {
            ModelActive::Default => Owner::Default,
            ModelActive::Custom(g) => Owner::Group(g),
        }
    }

    /// Outstanding IDs with owner, set and data.
    pub fn outstanding(&self) -> Vec<(u32, ModelEntry)> {
        self.ids.iter().map(|(&k, &v)| (k, v)).collect()
    }

    /// Groups in creation order with their members' private data.
    pub fn groups(&self) -> Vec<(OpsId, Vec<u64>)> {
        self.groups
            .iter()
            .map(|g| (g.ops, g.members.clone()))
            .collect()
    }

    /// The calls the model predicts group `ops`'s allocator has received.
    pub fn calls(&self, ops: OpsId) -> Option<&[OpsCall]> {
        self.groups
            .iter()
            .find(|g| g.ops == ops)
            .map(|g| &g.allocator.calls[..])
    }

    fn group_mut(&mut self, ops: OpsId) -> Option<&mut ModelGroup> {
        self.groups.iter_mut().find(|g| g.ops == ops)
    }

    pub fn alloc(&mut self, set: IoasidSet, min: u32, max: u32, data: u64) -> Result<u32, Refusal> {
        if max < min || max == INVALID_IOASID {
            return Err(Refusal::new(
                ErrorKind::Inval,
                Reason::BadRange,
                Rule::Arguments,
            ));
        }
        let owner = self.owner();
        let id = match self.active {
            ModelActive::Default => {
                // Rule 1: the default allocator, lowest free ID.
                match (min..=max).find(|x| !self.ids.contains_key(x)) {
                    Some(x) => x,
                    None => {
                        return Err(Refusal::new(
                            ErrorKind::Nomem,
                            Reason::Exhausted,
                            Rule::R1DefaultAlwaysAvailable,
                        ))
                    }
                }
            }
            ModelActive::Custom(g) => {
                // Rule 2: the active custom group answers, with its lead's private data.
                let ids = &self.ids;
                let group = self
                    .groups
                    .iter_mut()
                    .find(|x| x.ops == g)
                    .expect("active group exists");
                let lead = group.members[0];
                let answer = group.allocator.alloc(min, max, lead);
                if answer == INVALID_IOASID {
                    return Err(Refusal::new(
                        ErrorKind::Nomem,
                        Reason::CustomFailed,
                        Rule::UntrustedAnswer,
                    ));
                }
                if ids.contains_key(&answer) {
                    return Err(Refusal::new(
                        ErrorKind::Exists,
                        Reason::CustomDuplicate(answer),
                        Rule::UntrustedAnswer,
                    ));
                }
                if !(min..=max).contains(&answer) {
                    group.allocator.free(answer, lead);
                    return Err(Refusal::new(
                        ErrorKind::Inval,
                        Reason::CustomOutOfRange(answer),
                        Rule::UntrustedAnswer,
                    ));
                }
                answer
            }
        };
        self.ids.insert(id, ModelEntry { owner, set, data });
        Ok(id)
    }

    fn lookup(&self, id: u32) -> Result<&ModelEntry, Refusal> {
        let owner = self.owner();
        match self.ids.get(&id) {
            Some(e) if e.owner == owner => Ok(e),
            _ => Err(Refusal::new(
                ErrorKind::Inval,
                Reason::UnknownId,
                Rule::Lookup,
            )),
        }
    }

    pub fn free(&mut self, id: u32) -> Result<(), Refusal> {
        let owner = self.lookup(id)?.owner;
        if self.bindings.contains_key(&id) {
            return Err(Refusal::new(
                ErrorKind::Busy,
                Reason::Bound,
                Rule::B1BoundIdsStay,
            ));
        }
        if let Owner::Group(g) = owner {
            let group = self.group_mut(g).expect("owner group exists");
            let lead = group.members[0];
            group.allocator.free(id, lead);
        }
        self.ids.remove(&id);
        Ok(())
    }

    /// `getter` is modelled as a predicate on the data.
    pub fn find(
        &self,
        set: Option<IoasidSet>,
        id: u32,
        getter: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<u64, Refusal> {
        let e = self.lookup(id)?;
        if let Some(s) = set {
            if s != e.set {
                return Err(Refusal::new(
                    ErrorKind::Inval,
                    Reason::WrongSet,
                    Rule::Lookup,
                ));
            }
        }
        if let Some(g) = getter {
            if !g(e.data) {
                return Err(Refusal::new(
                    ErrorKind::Inval,
                    Reason::GetterRejected,
                    Rule::Lookup,
                ));
            }
        }
        Ok(e.data)
    }

    pub fn set_data(&mut self, id: u32, data: u64) -> Result<(), Refusal> {
        self.lookup(id)?;
        self.ids.get_mut(&id).expect("looked up").data = data;
        Ok(())
    }

    /// Register (ops, private); `script` is what a new group's scripted allocator follows
    /// (ignored when the group exists: same ops, same helpers).
    pub fn register(
        &mut self,
        ops: OpsId,
        private: u64,
        script: &[Behaviour],
    ) -> Result<(), Refusal> {
        match self.active {
            ModelActive::Default => {
                if !self.ids.is_empty() {
                    return Err(Refusal::new(
                        ErrorKind::Busy,
                        Reason::DefaultBusy,
                        Rule::R5SwitchCustomDefaultNeedsEmptySpace,
                    ));
                }
                // Rule 2: the first custom group takes over.
                self.groups.push(ModelGroup {
                    ops,
                    members: vec![private],
                    allocator: AllocatorModel::new(script.to_vec()),
                });
                self.active = ModelActive::Custom(ops);
                Ok(())
            }
            ModelActive::Custom(_) => {
                if let Some(g) = self.group_mut(ops) {
                    if g.members.contains(&private) {
                        return Err(Refusal::new(
                            ErrorKind::Exists,
                            Reason::AlreadyRegistered,
                            Rule::Registry,
                        ));
                    }
                    // Rule 4: a new member shares the group's space.
                    g.members.push(private);
                } else {
                    // Rule 2: queued behind the active group.
                    self.groups.push(ModelGroup {
                        ops,
                        members: vec![private],
                        allocator: AllocatorModel::new(script.to_vec()),
                    });
                }
                Ok(())
            }
        }
    }

    pub fn unregister(&mut self, ops: OpsId, private: u64) -> Result<(), Refusal> {
        let not_registered = Refusal::new(ErrorKind::Inval, Reason::NotRegistered, Rule::Registry);
        let Some(gi) = self.groups.iter().position(|g| g.ops == ops) else {
            return Err(not_registered);
        };
        let Some(mi) = self.groups[gi].members.iter().position(|&p| p == private) else {
            return Err(not_registered);
        };
        if self.groups[gi].members.len() > 1 {
            // Rule 4: the group stays, with its IDs; the next member may lead.
            self.groups[gi].members.remove(mi);
            return Ok(());
        }
        if self.ids.values().any(|e| e.owner == Owner::Group(ops)) {
            return Err(Refusal::new(
                ErrorKind::Busy,
                Reason::GroupBusy,
                Rule::R3LastMemberNeedsFreedIds,
            ));
        }
        self.groups.remove(gi);
        if self.active == ModelActive::Custom(ops) {
            // Rule 5 (space is empty by rule 3) and rule 1: next group, else default.
            self.active = match self.groups.first() {
                Some(g) => ModelActive::Custom(g.ops),
                None => ModelActive::Default,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: IoasidSet = IoasidSet(0);

    #[test]
    fn refusals_name_their_rule() {
        let mut m = IoasidModel::new();
        let id = m.alloc(S, 0, 3, 1).unwrap();
        assert_eq!(
            m.register(OpsId(1), 0, &[]).unwrap_err().rule,
            Rule::R5SwitchCustomDefaultNeedsEmptySpace
        );
        m.free(id).unwrap();
        m.register(
            OpsId(1),
            0,
            &[
                Behaviour::Fresh,
                Behaviour::Duplicate,
                Behaviour::OutOfRange,
            ],
        )
        .unwrap();
        assert_eq!(m.active(), ModelActive::Custom(OpsId(1)));
        let id = m.alloc(S, 0, 3, 1).unwrap();
        let dup = m.alloc(S, 0, 3, 1).unwrap_err();
        assert_eq!(
            (dup.reason, dup.rule),
            (Reason::CustomDuplicate(id), Rule::UntrustedAnswer)
        );
        assert_eq!(
            m.alloc(S, 0, 3, 1).unwrap_err().reason,
            Reason::CustomOutOfRange(4)
        );
        assert_eq!(
            m.unregister(OpsId(1), 0).unwrap_err().rule,
            Rule::R3LastMemberNeedsFreedIds
        );
        m.free(id).unwrap();
        m.unregister(OpsId(1), 0).unwrap();
        assert_eq!(m.active(), ModelActive::Default);
    }
}
