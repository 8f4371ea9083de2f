//! The preallocation-budget checker. From the engine's pool events, its allocator counters
//! and the model's view of jobs and reservations, it flags:
//! (a) a table allocation, while a job runs or inside a reserved range, that does not come
//!     from the right pool (or any allocation at all inside a reservation);
//! (b) a worst-case count lower than what a job can use (below the checker's own count at
//!     prepare, or a pool running dry for a run inside its prepared range);
//! (c) a page of one pool used by another (taken, or reserved into a second pool);
//! (d) leftovers not returned at cleanup, pool pages leaked, pins not dropped.
//! It reads only events and counters, never the engine's tables or code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ptfuzz_engine::{Counters, PoolEvent, PoolId};

use crate::finding::BudgetFinding as B;
use crate::{Divergence, FixedState};

/// What the op being checked was, as the executor and the model see it.
#[derive(Clone, Copy, Debug)]
pub enum OpContext {
    /// A plain map or unmap; `reserved`: its range lies inside a reservation.
    Map {
        reserved: bool,
    },
    Unmap {
        reserved: bool,
    },
    /// `job.prepare` that succeeded, with the checker's worst-case count for the range.
    Prepare {
        job: u32,
        worst: u64,
    },
    /// `job.run` of a pending job; `inside`: the map lies inside the prepared range.
    Run {
        job: u32,
        inside: bool,
    },
    /// `job.cleanup` that succeeded.
    Cleanup {
        job: u32,
    },
    /// `reserve` or `unreserve` (pins are checked after both).
    Reserve,
    Unreserve,
    /// Anything else (lookups, grace periods, refused ops).
    Other,
}

/// Per-job accounting.
#[derive(Clone, Copy, Debug, Default)]
struct JobView {
    pages: u64,
    taken: u64,
    ran: bool,
}

/// Totals for the report line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetStats {
    pub prepared: u64,
    pub run: u64,
    /// Cleaned up without ever running.
    pub abandoned: u64,
    /// Pages reserved into job pools.
    pub reserved: u64,
    /// Pages jobs actually took.
    pub used: u64,
    /// Tables reservations allocated.
    pub reserve_tables: u64,
    pub violations: u64,
}

impl BudgetStats {
    /// Pages reserved per page used (`inf` if none was used).
    pub fn over_reservation(&self) -> f64 {
        self.reserved as f64 / self.used as f64
    }

    pub fn add(&mut self, o: &BudgetStats) {
        self.prepared += o.prepared;
        self.run += o.run;
        self.abandoned += o.abandoned;
        self.reserved += o.reserved;
        self.used += o.used;
        self.reserve_tables += o.reserve_tables;
        self.violations += o.violations;
    }
}

impl fmt::Display for BudgetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "budget: jobs prepared={} run={} abandoned={}; pages reserved={} used={} over-reservation={}; reservation tables={}; violations={}",
            self.prepared,
            self.run,
            self.abandoned,
            self.reserved,
            self.used,
            if self.used == 0 { "n/a".to_string() } else { format!("{:.2}x", self.over_reservation()) },
            self.reserve_tables,
            self.violations
        )
    }
}

/// The checker's state across one input.
#[derive(Debug, Default)]
pub struct BudgetChecker {
    /// Frame → the pool it sits in (from Reserve events until Take or Return).
    pooled: HashMap<u64, PoolId, FixedState>,
    jobs: BTreeMap<u32, JobView>,
    pub stats: BudgetStats,
}

fn flag(op: usize, what: B) -> Result<(), Divergence> {
    Err(Divergence::new(what).at(op))
}

impl BudgetChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one op: its pool events, and the allocator counters before and after it.
    pub fn check_op(
        &mut self,
        op: usize,
        ctx: OpContext,
        events: &[PoolEvent],
        before: &Counters,
        after: &Counters,
    ) -> Result<(), Divergence> {
        let source = match ctx {
            OpContext::Run { job, .. } => Some(PoolId::Job(job)),
            OpContext::Reserve => Some(PoolId::Reserve),
            _ => None,
        };
        let (mut reserved, mut taken, mut returned) = (0u64, 0u64, 0u64);
        for ev in events {
            match *ev {
                PoolEvent::Reserve { pa, pool, .. } => {
                    if let Some(other) = self.pooled.insert(pa, pool) {
                        self.stats.violations += 1;
                        return flag(
                            op,
                            B::ReservedAgain {
                                pa,
                                owner: other,
                                pool,
                            },
                        );
                    }
                    reserved += 1;
                }
                PoolEvent::Take { pa, pool, .. } => {
                    let from = self.pooled.remove(&pa);
                    if from != Some(pool) {
                        self.stats.violations += 1;
                        return flag(
                            op,
                            B::TookForeignPage {
                                pool,
                                pa,
                                owner: from,
                            },
                        );
                    }
                    if source != Some(pool) {
                        self.stats.violations += 1;
                        return flag(
                            op,
                            B::WrongSource {
                                pool,
                                serving: source,
                            },
                        );
                    }
                    taken += 1;
                }
                PoolEvent::Return { pa, pool, .. } => {
                    let from = self.pooled.remove(&pa);
                    if from != Some(pool) {
                        self.stats.violations += 1;
                        return flag(
                            op,
                            B::ReturnedForeignPage {
                                pool,
                                pa,
                                owner: from,
                            },
                        );
                    }
                    returned += 1;
                }
                PoolEvent::Dry { pool, .. } => {
                    if let OpContext::Run { inside: true, .. } = ctx {
                        self.stats.violations += 1;
                        return flag(op, B::DryInsideRange { pool });
                    }
                }
            }
        }
        let from_allocator = (after.allocated - before.allocated).saturating_sub(taken);
        let freed = after.deferred + after.freed - before.deferred - before.freed;
        match ctx {
            OpContext::Run { job, .. } => {
                if from_allocator > 0 {
                    self.stats.violations += 1;
                    return flag(
                        op,
                        B::GlobalDuringJob {
                            tables: from_allocator,
                            job,
                        },
                    );
                }
                let j = self.jobs.entry(job).or_default();
                j.ran = true;
                j.taken += taken;
                self.stats.run += 1;
                self.stats.used += taken;
            }
            OpContext::Reserve => {
                if from_allocator > 0 {
                    self.stats.violations += 1;
                    return flag(
                        op,
                        B::ReserveOutsideBatch {
                            tables: from_allocator,
                        },
                    );
                }
                if taken != reserved {
                    self.stats.violations += 1;
                    return flag(
                        op,
                        B::ReserveBatchShort {
                            reserved,
                            installed: taken,
                        },
                    );
                }
                self.stats.reserve_tables += taken;
            }
            OpContext::Map { reserved: true } if after.allocated != before.allocated => {
                self.stats.violations += 1;
                return flag(op, B::ReservedMapAllocated);
            }
            OpContext::Unmap { reserved: true } if freed > 0 => {
                self.stats.violations += 1;
                return flag(op, B::ReservedUnmapFreed { tables: freed });
            }
            OpContext::Prepare { job, worst } => {
                if reserved < worst {
                    self.stats.violations += 1;
                    return flag(
                        op,
                        B::WorstCaseTooLow {
                            job,
                            reserved,
                            worst,
                        },
                    );
                }
                self.jobs.insert(
                    job,
                    JobView {
                        pages: reserved,
                        ..JobView::default()
                    },
                );
                self.stats.prepared += 1;
                self.stats.reserved += reserved;
            }
            OpContext::Cleanup { job } => {
                let j = self.jobs.remove(&job).unwrap_or_default();
                if returned != j.pages - j.taken.min(j.pages) {
                    self.stats.violations += 1;
                    let left = j.pages - j.taken.min(j.pages);
                    return flag(
                        op,
                        B::LeftoversNotReturned {
                            job,
                            returned,
                            left,
                        },
                    );
                }
                if !j.ran {
                    self.stats.abandoned += 1;
                }
            }
            _ => {}
        }
        if taken > 0 && source.is_none() {
            self.stats.violations += 1;
            return flag(op, B::PoolPagesOutsideRun { pages: taken });
        }
        self.check_pooled(op, after)
    }

    /// Pool pages the engine holds against the pages the events put there: a leak otherwise.
    pub fn check_pooled(&mut self, op: usize, after: &Counters) -> Result<(), Divergence> {
        if after.pooled != self.pooled.len() as u64 {
            self.stats.violations += 1;
            return flag(
                op,
                B::PoolPagesUnaccounted {
                    engine: after.pooled,
                    events: self.pooled.len() as u64,
                },
            );
        }
        Ok(())
    }

    /// Pins the engine's tables hold against the pins the model expects.
    pub fn check_pins(
        &mut self,
        op: usize,
        engine_pins: u64,
        model_pins: u64,
    ) -> Result<(), Divergence> {
        if engine_pins != model_pins {
            self.stats.violations += 1;
            return flag(
                op,
                B::Pins {
                    engine: engine_pins,
                    model: model_pins,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
