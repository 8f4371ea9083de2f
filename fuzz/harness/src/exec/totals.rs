//! What the oracles checked, summed over every domain a thread ran: a campaign's report
//! says how much checking stood behind "no crash". Each [`CheckedDomain`] adds its counts
//! when it is dropped; a campaign worker takes the sum after each batch of inputs.
//!
//! [`CheckedDomain`]: super::CheckedDomain

use std::cell::Cell;

use serde::{Deserialize, Serialize};

/// Sums of the oracles' own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleTotals {
    /// Domains created and checked.
    pub domains: u64,
    /// Commands applied to engine and model and compared.
    pub ops: u64,
    /// TLB / walk cache: cached entries made stale (cleared, or below an unlinked table),
    /// each of which had to be covered by an invalidation before its op ended.
    pub tlb_breaks: u64,
    /// Of those, table (walk-cache) entries.
    pub tlb_table_breaks: u64,
    /// Invalidations the TLB oracle replayed (all, walk, leaf).
    pub invalidations: u64,
    /// Table frees checked against the unlink and invalidation before them.
    pub table_frees_checked: u64,
    /// Frame-accounting checks (one per op) and the frames they accounted for.
    pub frame_checks: u64,
    pub frames_accounted: u64,
    /// Frames checked for poison when they reached the free list.
    pub poison_checked: u64,
    /// Budget checker: jobs prepared and run, pages reserved and used.
    pub jobs_prepared: u64,
    pub jobs_run: u64,
    pub pages_reserved: u64,
    pub pages_used: u64,
}

impl OracleTotals {
    pub fn add(&mut self, o: &OracleTotals) {
        self.domains += o.domains;
        self.ops += o.ops;
        self.tlb_breaks += o.tlb_breaks;
        self.tlb_table_breaks += o.tlb_table_breaks;
        self.invalidations += o.invalidations;
        self.table_frees_checked += o.table_frees_checked;
        self.frame_checks += o.frame_checks;
        self.frames_accounted += o.frames_accounted;
        self.poison_checked += o.poison_checked;
        self.jobs_prepared += o.jobs_prepared;
        self.jobs_run += o.jobs_run;
        self.pages_reserved += o.pages_reserved;
        self.pages_used += o.pages_used;
    }
}

thread_local! {
    static TOTALS: Cell<OracleTotals> = const { Cell::new(OracleTotals {
        domains: 0, ops: 0, tlb_breaks: 0, tlb_table_breaks: 0, invalidations: 0,
        table_frees_checked: 0, frame_checks: 0, frames_accounted: 0, poison_checked: 0,
        jobs_prepared: 0, jobs_run: 0, pages_reserved: 0, pages_used: 0,
    }) };
}

/// Adds one domain's counts to this thread's sum.
pub(crate) fn add(o: &OracleTotals) {
    TOTALS.with(|t| {
        let mut sum = t.get();
        sum.add(o);
        t.set(sum);
    });
}

/// This thread's sum since the last call.
pub fn take() -> OracleTotals {
    TOTALS.with(|t| t.replace(OracleTotals::default()))
}
