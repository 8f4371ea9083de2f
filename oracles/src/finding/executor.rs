//! Findings of the checks the executors make themselves: counters, the allocation guard,
//! custom allocator hooks, and the IOASID engine against its model.

use std::fmt;

/// One of the allocator's counters the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    Allocated,
    Live,
    Deferred,
    Freed,
    Failed,
    Pooled,
    /// Frames of memory carved so far.
    BackedFrames,
}

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Allocated => "allocated",
            Counter::Live => "live",
            Counter::Deferred => "deferred",
            Counter::Freed => "freed",
            Counter::Failed => "failed",
            Counter::Pooled => "pooled",
            Counter::BackedFrames => "backed frames",
        }
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

finding_enum! {
    /// An allocator counter against the model's prediction, one kind per counter.
    pub enum CounterFinding: "counters" {
        Allocated { engine: u64, model: u64 } = "allocated" ("table counter `allocated`: engine {engine}, model {model}"),
        Live { engine: u64, model: u64 } = "live" ("table counter `live`: engine {engine}, model {model}"),
        Deferred { engine: u64, model: u64 } = "deferred" ("table counter `deferred`: engine {engine}, model {model}"),
        Freed { engine: u64, model: u64 } = "freed" ("table counter `freed`: engine {engine}, model {model}"),
        Failed { engine: u64, model: u64 } = "failed" ("table counter `failed`: engine {engine}, model {model}"),
        Pooled { engine: u64, model: u64 } = "pooled" ("table counter `pooled`: engine {engine}, model {model}"),
        BackedFrames { engine: u64, model: u64 } = "backed-frames" ("table counter `backed frames`: engine {engine}, model {model}"),
    }
}

impl CounterFinding {
    /// The finding for `counter` differing.
    pub fn new(counter: Counter, engine: u64, model: u64) -> Self {
        match counter {
            Counter::Allocated => CounterFinding::Allocated { engine, model },
            Counter::Live => CounterFinding::Live { engine, model },
            Counter::Deferred => CounterFinding::Deferred { engine, model },
            Counter::Freed => CounterFinding::Freed { engine, model },
            Counter::Failed => CounterFinding::Failed { engine, model },
            Counter::Pooled => CounterFinding::Pooled { engine, model },
            Counter::BackedFrames => CounterFinding::BackedFrames { engine, model },
        }
    }
}

finding_enum! {
    /// The global-allocator guard.
    pub enum AllocGuardFinding: "alloc-guard" {
        HeapInNoAlloc { hits: u64, word: &'static str } = "heap-in-no-alloc" (
            "{hits} heap allocation(s) inside a no-allocate section ({word})"
        ),
    }
}

finding_enum! {
    /// Custom allocator hooks against the counters.
    pub enum AllocHooksFinding: "alloc-hooks" {
        Calls { allocs: u64, frees: u64, allocated: u64, freed: u64 } = "calls-differ-from-counters" (
            "custom hooks saw {allocs} host pages taken and {frees} released, counters say {allocated} and {freed}"
        ),
    }
}

finding_enum! {
    /// IOASID engine state against the model (values as each side prints them).
    pub enum IoasidStateFinding: "ioasid-state" {
        ActiveAllocator { engine: String, model: String } = "active-allocator" (
            "active allocator: engine {engine}, model {model}"
        ),
        Outstanding { engine: String, model: String } = "outstanding" (
            "outstanding (id, set, data): engine {engine}, model {model}"
        ),
        Groups { engine: String, model: String } = "groups" (
            "groups: engine {engine}, model {model}"
        ),
        Calls { ops: String, engine: String, model: String } = "allocator-calls" (
            "calls into {ops}: engine {engine}, model {model}"
        ),
        Bindings { engine: String, model: String } = "bindings" (
            "bindings: engine {engine}, model {model}"
        ),
    }
}

finding_enum! {
    /// The IOASID engine's own invariants (its message says which).
    pub enum IoasidConsistencyFinding: "ioasid-consistency" {
        Broken { why: String } = "invariant-broken" ("{why}"),
    }
}
