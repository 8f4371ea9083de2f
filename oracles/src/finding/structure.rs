//! The structure walk's findings: the shape of the tables against the allocator's metadata,
//! its counters, and the poison of freed frames.

use ptfuzz_engine::alloc::PageState;

use crate::walker::{FaultKind, FrameInfo};

finding_enum! {
    /// Found by walking the tables (and the frames) of the device view.
    pub enum StructureFinding: "structure" {
        TableOutsideMemory { pa: u64, entries: u64, mem_base: u64, mem_end: u64 } = "table-outside-memory" (
            "table at pa {pa:#x} ({entries} entries) is outside memory [{mem_base:#x}, {mem_end:#x})"
        ),
        /// A table descriptor whose target is not a Live table of the next level.
        BadChild { desc_pa: u64, iova: u64, target: u64, level: u32, meta: Option<FrameInfo> } = "table-target-not-live" (
            "descriptor at pa {desc_pa:#x} (iova {iova:#x}) points to {target:#x}, expected a Live \
             L{level} table, metadata {meta:?}"
        ),
        PoisonReachable { level: u32, pa: u64, iova: u64 } = "poison-reachable" (
            "L{level} table holds poison at pa {pa:#x} (iova {iova:#x}): a freed table is reachable"
        ),
        Malformed { level: u32, pa: u64, iova: u64, desc: u64, why: FaultKind } = "malformed-descriptor" (
            "L{level} descriptor at pa {pa:#x} (iova {iova:#x}) = {desc:#018x}: {why} \
             (the engine must never write it)"
        ),
        TableAttrBits { level: u32, pa: u64, iova: u64, desc: u64, bits: u64 } = "table-attribute-bits" (
            "L{level} table descriptor at pa {pa:#x} (iova {iova:#x}) = {desc:#018x} \
             has attribute/ignored bits {bits:#x} set"
        ),
        RootBeyondOas { root: u64, end: u64, limit: u64 } = "root-beyond-oas" (
            "root {root:#x}..{end:#x} lies at or beyond 2^OAS = {limit:#x}: address size fault"
        ),
        RootMisaligned { root: u64, size: u64 } = "root-misaligned" (
            "root {root:#x} is not aligned to its size {size:#x}"
        ),
        RootMetadata { root: u64, level: u32, frames: u64, meta: Option<FrameInfo> } = "root-metadata" (
            "root {root:#x}: expected a Live L{level} table of {frames} frame(s), metadata {meta:?}"
        ),
        RootTail { root: u64, k: u64, pa: u64, meta: Option<FrameInfo> } = "root-tail" (
            "root {root:#x}: frame {k} at {pa:#x} should be a Tail, metadata {meta:?}"
        ),
        RootBeyondEntries { root: u64, entries: usize, pa: u64, word: u64 } = "root-word-beyond-entries" (
            "root {root:#x} has {entries} entries but the word at pa {pa:#x} beyond them is {word:#018x}"
        ),
        ReachableTwice { table: u64, desc_pa: u64, iova: u64 } = "table-reachable-twice" (
            "table {table:#x} is reachable twice (again from pa {desc_pa:#x}, iova {iova:#x})"
        ),
        LiveEntries { level: u32, table: u64, iova: u64, valid: u32, meta_live: Option<u32> } = "live-entry-count" (
            "L{level} table {table:#x} (iova {iova:#x}) has {valid} valid entries, metadata \
             live count {meta_live:?}"
        ),
        CountersInconsistent { allocated: u64, live: u64, deferred: u64, freed: u64 } = "counters-inconsistent" (
            "counters inconsistent: allocated {allocated} != live {live} + deferred {deferred} + freed {freed}"
        ),
        Leak { pa: u64, level: Option<u8> } = "leak" (
            "leak: Live table {pa:#x} (level {level:?}) is not reachable from the root"
        ),
        LiveCounter { counter: u64, reachable: u64 } = "live-counter" (
            "counters say {counter} live tables, {reachable} are reachable"
        ),
        LiveMetadata { metadata: u64, counter: u64 } = "live-metadata" (
            "{metadata} tables are Live in the metadata, counters say {counter}"
        ),
        DeferredCount { waiting: u64, counter: u64 } = "deferred-count" (
            "{waiting} tables wait for the grace period, counters say {counter}"
        ),
        FreeFrameWritten { frame: u64, pa: u64, word: u64, poison: u64 } = "free-frame-written" (
            "free frame {frame:#x}: word at pa {pa:#x} is {word:#018x}, expected poison \
             {poison:#x} (written after free)"
        ),
        /// A table in use (reachable or deferred) in a host page on the page free list.
        TableInFreePage { what: &'static str, pa: u64, page: u64, state: Option<PageState> } = "table-in-free-host-page" (
            "{what} table {pa:#x} lies in host page {page:#x}, which is {state:?}"
        ),
        /// A table linked where the model has none (an Armv7 short-descriptor level-2 table
        /// the semantics free, or one never allocated there).
        TableNotInModel { level: u32, table: u64, iova: u64 } = "table-not-in-model" (
            "L{level} table {table:#x} is linked for iova {iova:#x}, where the model has no table"
        ),
        /// A table of the model that no table descriptor links.
        ModelTableMissing { level: u32, iova: u64 } = "model-table-missing" (
            "the model has an L{level} table for iova {iova:#x}, the tables link none there"
        ),
        TablesOverlap { first: u64, first_end: u64, first_what: &'static str, second: u64, second_what: &'static str, page: u64 } = "tables-overlap" (
            "{second_what} table {second:#x} overlaps {first_what} table {first:#x}..{first_end:#x} in host page {page:#x}"
        ),
    }
}
