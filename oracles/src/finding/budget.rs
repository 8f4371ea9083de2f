//! The preallocation-budget checker's findings.

use ptfuzz_engine::events::PoolId;

finding_enum! {
    /// The allocation and pool logs against reservations and jobs.
    pub enum BudgetFinding: "budget" {
        ReservedAgain { pa: u64, owner: PoolId, pool: PoolId } = "page-reserved-twice" (
            "page {pa:#x} of {owner:?}'s pool reserved again into {pool:?}'s pool"
        ),
        TookForeignPage { pool: PoolId, pa: u64, owner: Option<PoolId> } = "took-foreign-page" (
            "{pool:?} took page {pa:#x}, which belongs to {owner:?}"
        ),
        WrongSource { pool: PoolId, serving: Option<PoolId> } = "pool-not-the-source" (
            "a page of {pool:?}'s pool served a table while {serving:?} was the source"
        ),
        ReturnedForeignPage { pool: PoolId, pa: u64, owner: Option<PoolId> } = "returned-foreign-page" (
            "{pool:?} returned page {pa:#x}, which belongs to {owner:?}"
        ),
        DryInsideRange { pool: PoolId } = "pool-dry-inside-range" (
            "{pool:?}'s pool ran dry inside its prepared range: the worst-case count is too low"
        ),
        GlobalDuringJob { tables: u64, job: u32 } = "global-allocation-during-job" (
            "{tables} table(s) from the global allocator while job {job} ran"
        ),
        ReserveOutsideBatch { tables: u64 } = "reserve-outside-batch" (
            "reserve took {tables} table(s) outside its batch"
        ),
        ReserveBatchShort { reserved: u64, installed: u64 } = "reserve-batch-not-installed" (
            "reserve batch of {reserved} page(s), {installed} installed"
        ),
        ReservedMapAllocated = "reserved-map-allocated" (
            "a map inside a reserved range allocated a table"
        ),
        ReservedUnmapFreed { tables: u64 } = "reserved-unmap-freed" (
            "an unmap inside a reserved range freed {tables} table(s)"
        ),
        WorstCaseTooLow { job: u32, reserved: u64, worst: u64 } = "worst-case-too-low" (
            "job {job} reserved {reserved} page(s), the worst case is {worst}"
        ),
        LeftoversNotReturned { job: u32, returned: u64, left: u64 } = "leftovers-not-returned" (
            "job {job} cleanup returned {returned} page(s) of {left} left"
        ),
        PoolPagesOutsideRun { pages: u64 } = "pool-pages-outside-run" (
            "{pages} pool page(s) served tables outside any job run"
        ),
        PoolPagesUnaccounted { engine: u64, events: u64 } = "pool-pages-unaccounted" (
            "engine holds {engine} pool page(s), the events account for {events}"
        ),
        Pins { engine: u64, model: u64 } = "reservation-pins" (
            "tables hold {engine} reservation pin(s), {model} expected"
        ),
        LeakedAfterCleanup { pages: u64 } = "pool-leaked-after-cleanup" (
            "{pages} pool page(s) leaked after every cleanup"
        ),
    }
}
