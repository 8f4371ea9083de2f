//! Why an IOASID operation was refused. Plain data: the model in `ptfuzz-oracles` predicts
//! these values with its own code and compares them with the engine's.

use std::fmt;

use crate::error::ErrorKind;

/// The precise cause of a refusal. Each maps to one [`ErrorKind`] (see [`Reason::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `alloc` with `min > max`, or `max == INVALID_IOASID` (the invalid ID is never handed out).
    BadRange,
    /// The default allocator has no free ID in `[min, max]`.
    Exhausted,
    /// The custom allocator answered `INVALID_IOASID` (it failed, or returned the invalid ID).
    CustomFailed,
    /// The custom allocator answered an ID outside `[min, max]`; it was freed back to it.
    CustomOutOfRange(u32),
    /// The custom allocator answered an ID that is already outstanding in its ID space; it
    /// was *not* freed back (the ID still belongs to its first holder).
    CustomDuplicate(u32),
    /// `free` / `find` / `set_data` of an ID that is not outstanding in the active space.
    UnknownId,
    /// `find` with a set that is not the ID's set.
    WrongSet,
    /// `find` whose getter rejected the ID's data.
    GetterRejected,
    /// `register_allocator` of an (ops, private) pair that is already registered.
    AlreadyRegistered,
    /// `unregister_allocator` of an (ops, private) pair that is not registered.
    NotRegistered,
    /// Rule 5: switching from the default allocator to a custom one while the default
    /// allocator still has outstanding IDs.
    DefaultBusy,
    /// Rule 3: unregistering the last member of a shared-ops group while that group's space
    /// still has outstanding IDs.
    GroupBusy,
    /// `free` of an ID bound to a page-table domain: unbind it first.
    Bound,
    /// `unbind` / `translate` of an outstanding ID that is bound to no domain.
    NotBound,
    /// `bind` of an ID to the domain it is already bound to.
    AlreadyBound,
}

impl Reason {
    pub fn kind(self) -> ErrorKind {
        match self {
            Reason::BadRange
            | Reason::CustomOutOfRange(_)
            | Reason::UnknownId
            | Reason::WrongSet
            | Reason::GetterRejected
            | Reason::NotRegistered
            | Reason::NotBound => ErrorKind::Inval,
            Reason::Exhausted | Reason::CustomFailed => ErrorKind::Nomem,
            Reason::CustomDuplicate(_) | Reason::AlreadyRegistered | Reason::AlreadyBound => {
                ErrorKind::Exists
            }
            Reason::DefaultBusy | Reason::GroupBusy | Reason::Bound => ErrorKind::Busy,
        }
    }
}

/// An IOASID refusal: the error kind shared with the rest of the engine, and the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoasidError {
    pub kind: ErrorKind,
    pub reason: Reason,
}

impl From<Reason> for IoasidError {
    fn from(reason: Reason) -> Self {
        IoasidError {
            kind: reason.kind(),
            reason,
        }
    }
}

impl fmt::Display for IoasidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.kind, self.reason)
    }
}

impl std::error::Error for IoasidError {}
