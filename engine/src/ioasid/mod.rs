//! IOASID (PASID) allocation: a framework with a default allocator and runtime-registered,
//! untrusted custom allocators. Intent from the custom-allocator seed
//! (`../shared/seeds/002_*`); this is our own design, documented in `docs/IOASID.md`.
//!
//! # Model
//!
//! * An ID is a `u32`; [`INVALID_IOASID`] (`u32::MAX`) is never handed out.
//! * Every outstanding ID carries an [`IdData`]: its [`IoasidSet`] and a `u64` of private data
//!   (given to `alloc`, replaced by `set_data`, read by `find`).
//! * A *registration* is a pair (ops, private): `ops` is a boxed [`AllocatorOps`] whose
//!   [`OpsId`] names its helper functions, `private` is the allocator's own data.
//!   Registrations with the same `OpsId` form one *shared-ops group* with one ID space; the
//!   group keeps the ops instance of its first registration (same `OpsId` = same helpers).
//! * Groups are kept in the order they were created; the first is *active*. With no group,
//!   the default allocator is active. Only the active space can hold IDs (see
//!   [`Ioasid::check_consistency`]), so every lookup goes to the active space and finds all
//!   outstanding IDs: lookups stay consistent while allocators come and go.
//!
//! # The five rules, and our choices
//!
//! 1. **The default allocator is always available**: it is not registered, and is active
//!    whenever no custom group is registered.
//! 2. **Custom allocators take precedence**: registering the first custom group makes it
//!    active. A later group with another `OpsId` is queued (registration order), and becomes
//!    active when every group before it is gone.
//! 3. **The last member of a group may leave only when its IDs are freed.** The seed warns
//!    and drops the space, orphaning the IDs (and their data). We refuse:
//!    `busy` / [`Reason::GroupBusy`]; nothing changes.
//! 4. **Switching within a group keeps IDs**: unregistering a member that is not the last
//!    keeps the space. The `private` passed to the ops is that of the group's *current* first
//!    member (its lead); when the lead leaves, the next member leads. (The seed keeps using
//!    the departed registration's data.)
//! 5. **Switching between custom and default requires an empty space.** Default → custom:
//!    registering the first group while the default space has IDs is refused with
//!    `busy` / [`Reason::DefaultBusy`] (the seed returns -EAGAIN). Custom → default, and
//!    custom → the next queued custom group, only happen when the active group's last member
//!    leaves, which rule 3 allows only with an empty space; queued groups never allocate, so
//!    their spaces are empty.
//!
//! # Untrusted custom allocators
//!
//! Every `alloc` answer is validated, in this order:
//! * `INVALID_IOASID` (failure or the invalid ID) → `nomem` / [`Reason::CustomFailed`];
//! * an ID already outstanding in the group's space → `exists` / [`Reason::CustomDuplicate`],
//!   and the ID is **not** freed back: it still belongs to its first holder, and freeing it
//!   would let the allocator hand a live ID out again (the seed frees it; we do not, whatever
//!   else is wrong with the answer);
//! * an ID outside `[min, max]` → the framework calls `ops.free(id)` and returns
//!   `inval` / [`Reason::CustomOutOfRange`].
//!
//! # Other choices
//!
//! * `alloc` with `min > max` or `max == INVALID_IOASID` → `inval` / [`Reason::BadRange`],
//!   before any allocator is called. Default allocator with no free ID → `nomem`.
//! * `free`, `find`, `set_data` of an ID that is not outstanding → `inval` /
//!   [`Reason::UnknownId`] (the seed only logs on `free`). `find` with another set →
//!   [`Reason::WrongSet`]; a getter that rejects the data → [`Reason::GetterRejected`].
//! * Registering a registered (ops, private) again → `exists`; unregistering an unknown one
//!   (also with no custom allocator at all) → `inval`. (The seed ignores an unknown
//!   registration of a one-member group's ops and removes the group.)

mod bind;
mod custom;
mod default;
mod error;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use bind::DomainId;
pub use custom::{AllocatorOps, Behaviour, OpsCall, OpsId, ScriptedOps};
pub use error::{IoasidError, Reason};

use default::DefaultAllocator;

/// The ID that is never allocated; custom allocators return it on failure.
pub const INVALID_IOASID: u32 = u32::MAX;

/// An ID set: `find` may require the ID to belong to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IoasidSet(pub u32);

/// What the framework stores for each outstanding ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdData {
    pub set: IoasidSet,
    pub data: u64,
}

/// Which allocator serves `alloc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Active {
    Default,
    Custom(OpsId),
}

struct Group {
    ops: Box<dyn AllocatorOps>,
    /// Private data of each registration, in registration order; `members[0]` leads.
    members: Vec<u64>,
    space: BTreeMap<u32, IdData>,
}

/// The IOASID framework.
#[derive(Default)]
pub struct Ioasid {
    default: DefaultAllocator,
    /// Groups in creation order; `groups[0]` is active.
    groups: Vec<Group>,
    /// PASID → page-table domain (see `bind.rs`); every key is outstanding.
    bindings: BTreeMap<u32, DomainId>,
}

impl Ioasid {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn active(&self) -> Active {
        match self.groups.first() {
            Some(g) => Active::Custom(g.ops.id()),
            None => Active::Default,
        }
    }

    fn active_space(&self) -> &BTreeMap<u32, IdData> {
        match self.groups.first() {
            Some(g) => &g.space,
            None => &self.default.space,
        }
    }

    fn active_space_mut(&mut self) -> &mut BTreeMap<u32, IdData> {
        match self.groups.first_mut() {
            Some(g) => &mut g.space,
            None => &mut self.default.space,
        }
    }

    /// Outstanding IDs (all in the active space), in ascending order.
    pub fn outstanding(&self) -> Vec<(u32, IdData)> {
        self.active_space().iter().map(|(&k, &v)| (k, v)).collect()
    }

    /// Registered groups in creation order, each with its members' private data.
    pub fn groups(&self) -> Vec<(OpsId, Vec<u64>)> {
        self.groups
            .iter()
            .map(|g| (g.ops.id(), g.members.clone()))
            .collect()
    }

    /// The ops instance a group uses, for inspection.
    pub fn ops(&self, id: OpsId) -> Option<&dyn AllocatorOps> {
        self.groups
            .iter()
            .find(|g| g.ops.id() == id)
            .map(|g| &*g.ops)
    }

    /// Allocate an ID in `[min, max]` in `set`, with `data` as its private data.
    pub fn alloc(
        &mut self,
        set: IoasidSet,
        min: u32,
        max: u32,
        data: u64,
    ) -> Result<u32, IoasidError> {
        if min > max || max == INVALID_IOASID {
            return Err(Reason::BadRange.into());
        }
        let entry = IdData { set, data };
        let Some(g) = self.groups.first_mut() else {
            return self
                .default
                .alloc(min, max, entry)
                .ok_or_else(|| Reason::Exhausted.into());
        };
        let lead = g.members[0];
        let id = g.ops.alloc(min, max, lead);
        if id == INVALID_IOASID {
            return Err(Reason::CustomFailed.into());
        }
        if g.space.contains_key(&id) {
            return Err(Reason::CustomDuplicate(id).into());
        }
        if id < min || id > max {
            g.ops.free(id, lead);
            return Err(Reason::CustomOutOfRange(id).into());
        }
        g.space.insert(id, entry);
        Ok(id)
    }

    /// Free an outstanding ID (a custom allocator is told through `ops.free`).
    pub fn free(&mut self, id: u32) -> Result<(), IoasidError> {
        if !self.active_space().contains_key(&id) {
            return Err(Reason::UnknownId.into());
        }
        if self.bindings.contains_key(&id) {
            return Err(Reason::Bound.into());
        }
        if let Some(g) = self.groups.first_mut() {
            let lead = g.members[0];
            g.ops.free(id, lead);
        }
        self.active_space_mut().remove(&id);
        Ok(())
    }

    /// The private data of `id`, checked against `set` and `getter` when given.
    pub fn find(
        &self,
        set: Option<IoasidSet>,
        id: u32,
        getter: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<u64, IoasidError> {
        let e = self.active_space().get(&id).ok_or(Reason::UnknownId)?;
        if set.is_some_and(|s| s != e.set) {
            return Err(Reason::WrongSet.into());
        }
        if getter.is_some_and(|g| !g(e.data)) {
            return Err(Reason::GetterRejected.into());
        }
        Ok(e.data)
    }

    /// Replace the private data of an outstanding ID.
    pub fn set_data(&mut self, id: u32, data: u64) -> Result<(), IoasidError> {
        let e = self
            .active_space_mut()
            .get_mut(&id)
            .ok_or(Reason::UnknownId)?;
        e.data = data;
        Ok(())
    }

    /// Register a custom allocator with its private data (rules 2, 4, 5).
    pub fn register_allocator(
        &mut self,
        ops: Box<dyn AllocatorOps>,
        private: u64,
    ) -> Result<(), IoasidError> {
        let id = ops.id();
        if let Some(g) = self.groups.iter_mut().find(|g| g.ops.id() == id) {
            if g.members.contains(&private) {
                return Err(Reason::AlreadyRegistered.into());
            }
            g.members.push(private);
            return Ok(());
        }
        if self.groups.is_empty() && !self.default.space.is_empty() {
            return Err(Reason::DefaultBusy.into());
        }
        self.groups.push(Group {
            ops,
            members: vec![private],
            space: BTreeMap::new(),
        });
        Ok(())
    }

    /// Unregister the registration (ops, private) (rules 3, 4, 5).
    pub fn unregister_allocator(&mut self, ops: OpsId, private: u64) -> Result<(), IoasidError> {
        let gi = self
            .groups
            .iter()
            .position(|g| g.ops.id() == ops)
            .ok_or(Reason::NotRegistered)?;
        let g = &mut self.groups[gi];
        let mi = g
            .members
            .iter()
            .position(|&p| p == private)
            .ok_or(Reason::NotRegistered)?;
        if g.members.len() > 1 {
            g.members.remove(mi);
            return Ok(());
        }
        if !g.space.is_empty() {
            return Err(Reason::GroupBusy.into());
        }
        self.groups.remove(gi);
        Ok(())
    }

    /// The framework's invariants; `Err` names the first one broken.
    pub fn check_consistency(&self) -> Result<(), String> {
        for (i, g) in self.groups.iter().enumerate() {
            let id = g.ops.id();
            if g.members.is_empty() {
                return Err(format!("group {id:?} has no members"));
            }
            for (j, p) in g.members.iter().enumerate() {
                if g.members[..j].contains(p) {
                    return Err(format!("group {id:?} has member {p:#x} twice"));
                }
            }
            if self.groups[..i].iter().any(|h| h.ops.id() == id) {
                return Err(format!("two groups for {id:?}"));
            }
            if i > 0 && !g.space.is_empty() {
                return Err(format!(
                    "queued group {id:?} holds IDs {:?}",
                    g.space.keys().collect::<Vec<_>>()
                ));
            }
            if g.space.contains_key(&INVALID_IOASID) {
                return Err(format!("group {id:?} holds INVALID_IOASID"));
            }
            if let Some(h) = g.ops.handed_out() {
                if !h.iter().eq(g.space.keys()) {
                    return Err(format!(
                        "group {id:?}: allocator has {:?} handed out, framework tracks {:?}",
                        h,
                        g.space.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }
        if !self.groups.is_empty() && !self.default.space.is_empty() {
            return Err(format!(
                "custom allocator active while the default space holds {:?}",
                self.default.space.keys().collect::<Vec<_>>()
            ));
        }
        if self.default.space.contains_key(&INVALID_IOASID) {
            return Err("default space holds INVALID_IOASID".into());
        }
        if let Some(id) = self
            .bindings
            .keys()
            .find(|id| !self.active_space().contains_key(id))
        {
            return Err(format!("PASID {id} is bound but not outstanding"));
        }
        Ok(())
    }
}
