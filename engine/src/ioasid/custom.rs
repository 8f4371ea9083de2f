//! Custom allocators: the [`AllocatorOps`] trait and [`ScriptedOps`], an untrusted allocator
//! whose answers come from a script (what the fuzzer generates).

use std::collections::BTreeSet;

use super::INVALID_IOASID;

/// Identity of a set of allocator helper functions. Two registrations with the same `OpsId`
/// use the same helpers, so they form one shared-ops group sharing one ID space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpsId(pub u32);

/// One call the framework made into a custom allocator (recorded by [`ScriptedOps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpsCall {
    Alloc {
        min: u32,
        max: u32,
        private: u64,
        answer: u32,
    },
    Free {
        id: u32,
        private: u64,
    },
}

/// A custom allocator. Untrusted: the framework validates every `alloc` answer.
pub trait AllocatorOps {
    /// Which helpers these are; equal ids mean a shared ID space.
    fn id(&self) -> OpsId;
    /// Return an ID in `[min, max]`, or `INVALID_IOASID` on failure. `private` is the private
    /// data of the group's current lead registration.
    fn alloc(&mut self, min: u32, max: u32, private: u64) -> u32;
    /// Take back an ID this allocator returned.
    fn free(&mut self, id: u32, private: u64);
    /// The IDs this allocator believes are handed out, if it can tell (used by
    /// `Ioasid::check_consistency`: it must equal the group's ID space).
    fn handed_out(&self) -> Option<&BTreeSet<u32>> {
        None
    }
    /// Calls received so far, if recorded.
    fn calls(&self) -> &[OpsCall] {
        &[]
    }
}

/// What a scripted allocator answers to one `alloc` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// The lowest ID in `[min, max]` not handed out by this allocator (`INVALID_IOASID` if none).
    Fresh,
    /// The lowest ID this allocator has already handed out (and not had freed), whatever the
    /// range; `INVALID_IOASID` if it has handed out nothing.
    Duplicate,
    /// `max + 1` if that is below `INVALID_IOASID`, else `min - 1` if `min > 0`, else
    /// `INVALID_IOASID`. The allocator records it as handed out.
    OutOfRange,
    /// Returns `INVALID_IOASID` as if it were an ID.
    Invalid,
    /// Fails (also `INVALID_IOASID`: the framework cannot tell this from `Invalid`).
    Fail,
}

impl Behaviour {
    pub const ALL: [Behaviour; 5] = [
        Behaviour::Fresh,
        Behaviour::Duplicate,
        Behaviour::OutOfRange,
        Behaviour::Invalid,
        Behaviour::Fail,
    ];
}

/// A deterministic untrusted allocator: the n-th `alloc` follows `script[n % len]` (an empty
/// script means always `Fresh`); `free` forgets the ID.
#[derive(Clone, Debug)]
pub struct ScriptedOps {
    id: OpsId,
    script: Vec<Behaviour>,
    pos: usize,
    handed: BTreeSet<u32>,
    calls: Vec<OpsCall>,
}

impl ScriptedOps {
    pub fn new(id: OpsId, script: Vec<Behaviour>) -> Self {
        ScriptedOps {
            id,
            script,
            pos: 0,
            handed: BTreeSet::new(),
            calls: Vec::new(),
        }
    }

    fn next_behaviour(&mut self) -> Behaviour {
        if self.script.is_empty() {
            return Behaviour::Fresh;
        }
        let b = self.script[self.pos % self.script.len()];
        self.pos += 1;
        b
    }
}

impl AllocatorOps for ScriptedOps {
    fn id(&self) -> OpsId {
        self.id
    }

    fn alloc(&mut self, min: u32, max: u32, private: u64) -> u32 {
        let answer = match self.next_behaviour() {
            Behaviour::Fresh => {
                let mut c = min as u64;
                for &h in self.handed.range(min..=max) {
                    if h as u64 == c {
                        c += 1;
                    } else {
                        break;
                    }
                }
                if c <= max as u64 && c < INVALID_IOASID as u64 {
                    self.handed.insert(c as u32);
                    c as u32
                } else {
                    INVALID_IOASID
                }
            }
            Behaviour::Duplicate => self.handed.first().copied().unwrap_or(INVALID_IOASID),
            Behaviour::OutOfRange => {
                let id = if (max as u64) + 1 < INVALID_IOASID as u64 {
                    max + 1
                } else if min > 0 {
                    min - 1
                } else {
                    INVALID_IOASID
                };
                if id != INVALID_IOASID {
                    self.handed.insert(id);
                }
                id
            }
            Behaviour::Invalid | Behaviour::Fail => INVALID_IOASID,
        };
        self.calls.push(OpsCall::Alloc {
            min,
            max,
            private,
            answer,
        });
        answer
    }

    fn free(&mut self, id: u32, private: u64) {
        self.handed.remove(&id);
        self.calls.push(OpsCall::Free { id, private });
    }

    fn handed_out(&self) -> Option<&BTreeSet<u32>> {
        Some(&self.handed)
    }

    fn calls(&self) -> &[OpsCall] {
        &self.calls
    }
}
