//! A domain under differential test: the engine, the model, and the oracles watching them.

use std::cell::Cell;
use std::rc::Rc;

use ptfuzz_engine::{CustomAllocator, Domain, DomainConfig, OrderedFlushLog};
use ptfuzz_oracles::budget::{BudgetChecker, OpContext};
use ptfuzz_oracles::finding::{AllocGuardFinding, AllocHooksFinding, Counter, CounterFinding};
use ptfuzz_oracles::walker::short::short_tables;
use ptfuzz_oracles::walker::{check_short_domain_logged, check_short_range_logged, WalkParams};
use ptfuzz_oracles::{
    check_domain_logged, check_range_logged, Divergence, FrameAccounting, Model, TlbOracle,
};

use super::Oracle;
use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::Command;

/// Host pages seen by the custom allocator hooks: (pages granted, pages freed).
type HookCounts = Rc<Cell<(u64, u64)>>;

/// The engine and the model of one domain, checked after every command.
pub struct CheckedDomain {
    engine: Domain<OrderedFlushLog>,
    model: Model,
    hooks: Option<HookCounts>,
    /// The TLB oracle, for every format (it decodes LPAE or short descriptors itself); the
    /// frame accounting is fed by `walker::short::short_tables` for armv7s, whose range and
    /// structure walks are `walker::short`'s.
    tlb: TlbOracle,
    /// Every frame in exactly one state, after every op.
    frames: FrameAccounting,
    /// Commands applied so far (the op index of divergences).
    ops: usize,
    /// The preallocation-budget checker (jobs, reservations).
    budget: BudgetChecker,
    /// Off: engine and model are still compared, but the page-table oracles (budget, TLB
    /// and break-before-make, frame accounting, counters, walker, structure) do not run;
    /// what the engine asked to flush is only kept for [`CheckedDomain::last_flushes`]
    /// (`PTFUZZ_QEMU_ONLY`: what QEMU alone catches).
    page_table_oracles: bool,
    /// The flush requests of the last op, when the TLB oracle does not take them.
    flushes: Vec<ptfuzz_engine::FlushEvent>,
    /// Tests of the oracles: the engine's flush requests of each op are thrown away before
    /// anything sees them, as from an engine that never made them.
    pub drop_engine_flushes: bool,
}

/// Whether engine and model accepted the configuration, and the pair if both did.
pub enum Created {
    Both(Box<CheckedDomain>),
    /// Both refused, with the engine's reason.
    Refused(String),
    /// One accepted, the other refused.
    Disagree {
        engine: Outcome,
        model: Outcome,
    },
}

/// Hooks that grant every request and count host pages of `page` bytes.
fn custom_hooks(counts: &HookCounts, page: u64) -> CustomAllocator {
    let (a, f) = (counts.clone(), counts.clone());
    CustomAllocator {
        alloc: Some(Box::new(move |_cookie, size| {
            let (n, m) = a.get();
            a.set((n + size / page, m));
            true
        })),
        free: Some(Box::new(move |_cookie, _pa, size| {
            let (n, m) = f.get();
            f.set((n, m + size / page));
        })),
        cookie: 0xc00c1e,
    }
}

impl CheckedDomain {
    pub fn create(cfg: &DomainConfig, custom_alloc: bool) -> Created {
        let hooks = custom_alloc.then(HookCounts::default);
        let engine = Domain::with_flush(
            *cfg,
            OrderedFlushLog::default(),
            hooks
                .as_ref()
                .map(|h| custom_hooks(h, cfg.host_page().size())),
        );
        let model = Model::new(cfg);
        match (engine, model) {
            (Ok(mut engine), Ok(mut model)) => {
                engine.set_event_logging(true);
                model.set_removal_logging(false);
                let r = model.rules();
                let params = WalkParams::new(
                    r.granule,
                    r.ias,
                    r.oas,
                    r.start_level,
                    cfg.format.is_stage2(),
                );
                // Frames are the model's smallest table (1 KiB for armv7s).
                let frames = FrameAccounting::new(r.table_bytes().trailing_zeros());
                let tlb = TlbOracle::new(cfg, engine.root(), &params);
                Created::Both(Box::new(CheckedDomain {
                    engine,
                    model,
                    hooks,
                    tlb,
                    frames,
                    ops: 0,
                    budget: BudgetChecker::new(),
                    page_table_oracles: true,
                    flushes: Vec::new(),
                    drop_engine_flushes: false,
                }))
            }
            (Err(e), Err(_)) => Created::Refused(e.to_string()),
            (e, m) => Created::Disagree {
                engine: Outcome::Domain(e.map(|_| ()).map_err(|c| c.kind())),
                model: Outcome::Domain(m.map(|_| ())),
            },
        }
    }

    /// Whether the domain uses Armv7 short descriptors (walked by `walker::short`).
    fn is_short(&self) -> bool {
        self.engine.config().format == ptfuzz_engine::FormatKind::Armv7s
    }

    /// The flush requests of the last op (after `apply` returned it).
    pub fn last_flushes(&self) -> impl Iterator<Item = &ptfuzz_engine::FlushEvent> + '_ {
        let (checked, kept) = match self.page_table_oracles {
            true => (Some(self.tlb.last_flushes()), None),
            false => (None, Some(self.flushes.iter())),
        };
        checked
            .into_iter()
            .flatten()
            .chain(kept.into_iter().flatten())
    }

    /// Turns the page-table oracles off for the rest of this domain's life (before its
    /// first op): engine and model are still compared op by op, nothing else is checked.
    pub fn without_page_table_oracles(&mut self) {
        self.page_table_oracles = false;
        // Nothing reads the device-write and allocator logs any more.
        self.engine.set_event_logging(false);
    }

    pub fn engine(&self) -> &Domain<OrderedFlushLog> {
        &self.engine
    }
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Applies one op command to both sides, compares outcomes, then runs the oracles.
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, FailureKind> {
        self.ops += 1;
        let before = self.engine.counters();
        let ctx = self.budget_context(cmd);
        crate::alloc_guard::take_hits();
        let (engine, model) = self.run_both(cmd)?;
        let hits = crate::alloc_guard::take_hits();
        if hits > 0 {
            let f = AllocGuardFinding::HeapInNoAlloc {
                hits,
                word: cmd.word(),
            };
            return Err(FailureKind::Oracle(Divergence::new(f).at(self.ops - 1)));
        }
        if engine != model {
            return Err(FailureKind::Divergence {
                engine,
                model,
                expected: None,
            });
        }
        if self.drop_engine_flushes {
            self.engine.flush_ops_mut().events.clear();
        }
        if !self.page_table_oracles {
            self.flushes.clear();
            let log = &mut self.engine.flush_ops_mut().events;
            self.flushes.extend(log.drain(..).map(|(_, f)| f));
            drop(self.engine.take_pool_log());
            return Ok(engine);
        }
        let op = self.ops - 1;
        self.check_budget(cmd, ctx, &engine, &before)
            .map_err(|d| FailureKind::Oracle(d.at(op)))?;
        self.after_op(op, cmd, &engine)
            .map_err(FailureKind::Oracle)?;
        Ok(engine)
    }

    /// What the budget checker needs to know about `cmd`, from the model before it runs.
    fn budget_context(&self, cmd: &Command) -> OpContext {
        let m = &self.model;
        let end = |iova: u64, pgsize: u64, count: u64| {
            pgsize.checked_mul(count).and_then(|s| iova.checked_add(s))
        };
        match *cmd {
            Command::Map {
                iova,
                pgsize,
                count,
                ..
            } => OpContext::Map {
                reserved: end(iova, pgsize, count).is_some_and(|e| m.inside_reservation(iova, e)),
            },
            Command::Unmap {
                iova,
                pgsize,
                count,
                ..
            } => OpContext::Unmap {
                reserved: end(iova, pgsize, count).is_some_and(|e| m.inside_reservation(iova, e)),
            },
            Command::JobPrepare {
                job, iova, size, ..
            } => match m.worst_case(iova, size) {
                Ok(worst) => OpContext::Prepare { job, worst },
                Err(_) => OpContext::Other,
            },
            Command::JobRun {
                job,
                iova,
                pgsize,
                count,
                ..
            } => match m.jobs().find(|(j, _)| *j == job) {
                Some((_, j)) if !j.ran => OpContext::Run {
                    job,
                    inside: end(iova, pgsize, count)
                        .is_some_and(|e| j.iova <= iova && e <= j.iova + j.size),
                },
                _ => OpContext::Other,
            },
            Command::JobCleanup { job, .. } => OpContext::Cleanup { job },
            Command::Reserve { .. } => OpContext::Reserve,
            Command::Unreserve { .. } => OpContext::Unreserve,
            _ => OpContext::Other,
        }
    }

    /// The budget checker after one op (refused prepares and cleanups change nothing).
    fn check_budget(
        &mut self,
        cmd: &Command,
        ctx: OpContext,
        out: &Outcome,
        before: &ptfuzz_engine::Counters,
    ) -> Result<(), Divergence> {
        let ctx = match (ctx, out) {
            (
                OpContext::Prepare { .. } | OpContext::Cleanup { .. },
                Outcome::Prepare(Err(_)) | Outcome::Cleanup(Err(_)),
            ) => OpContext::Other,
            (OpContext::Reserve, Outcome::Reserve(Err(_))) => OpContext::Other,
            (c, _) => c,
        };
        let events = self.engine.take_pool_log();
        let after = self.engine.counters();
        let op = self.ops - 1;
        self.budget.check_op(op, ctx, &events, before, &after)?;
        if matches!(
            cmd,
            Command::Reserve { .. }
                | Command::Unreserve { .. }
                | Command::Clear { .. }
                | Command::Unmap { .. }
        ) {
            let pins: u64 = self
                .engine
                .tables()
                .live_tables()
                .map(|(_, t)| t.pins as u64)
                .sum();
            self.budget.check_pins(op, pins, self.model.total_pins())?;
        }
        Ok(())
    }

    /// The budget checker's totals so far.
    pub fn budget_stats(&self) -> ptfuzz_oracles::budget::BudgetStats {
        self.budget.stats
    }

    fn run_both(&mut self, cmd: &Command) -> Result<(Outcome, Outcome), FailureKind> {
        match cmd {
            Command::Attach { .. } => Ok((Outcome::Done, Outcome::Done)),
            Command::Ioasid(_) => unreachable!("ioasid commands run on CheckedIoasid"),
            cmd => super::op::run_op(&mut self.engine, &mut self.model, cmd),
        }
    }

    /// The oracles after one command: the range it touched (plus neighbours) through the
    /// independent walker; everything after commands that touch everything.
    fn check_after(&mut self, cmd: &Command, out: &Outcome) -> Result<(), Divergence> {
        // Every write, flush and free of this op, in order: nothing stale may survive it.
        self.tlb.check_domain_op(self.ops - 1, &mut self.engine)?;
        if self.is_short() {
            // armv7s: the frame accounting over the tables the short descriptors reach.
            self.frames
                .check(&self.engine, short_tables(&self.engine))?;
        } else {
            self.frames
                .check(&self.engine, self.tlb.reachable_tables())?;
        }
        self.check_counters()?;
        let ia_end = 1u64 << self.engine.config().ias;
        let range = |iova: u64, pgsize: u64, count: u64| {
            let end = pgsize
                .checked_mul(count)
                .and_then(|s| iova.checked_add(s))
                .map_or(ia_end, |e| e.min(ia_end));
            (iova.min(ia_end), end)
        };
        // A map or unmap touched the bytes it reports done, and the page where it stopped;
        // one refused outright touched nothing (the TLB oracle saw every write it made).
        let g = self.engine.config().granule.size();
        let touched = |iova: u64, pgsize: u64, count: u64| {
            let done = match out {
                Outcome::Map(Ok(n)) | Outcome::Unmap(Ok(n)) => *n,
                Outcome::Map(Err(e)) => e.mapped,
                _ => 0,
            };
            let (lo, hi) = range(iova, pgsize, count);
            let step = if self.model.is_page_size(pgsize) {
                pgsize
            } else {
                g
            };
            (lo, hi.min(lo.saturating_add(done).saturating_add(step)))
        };
        let (lo, hi) = match *cmd {
            Command::Map {
                iova,
                pgsize,
                count,
                ..
            }
            | Command::Unmap {
                iova,
                pgsize,
                count,
                ..
            }
            | Command::JobRun {
                iova,
                pgsize,
                count,
                ..
            } => touched(iova, pgsize, count),
            Command::Reserve { iova, size, .. } | Command::Unreserve { iova, size, .. } => {
                range(iova, size, 1)
            }
            // Pools hold no mappings; counters and the TLB were checked.
            Command::JobPrepare { .. } | Command::JobCleanup { .. } => return Ok(()),
            Command::Lookup { iova, .. } => range(iova, 1, 1),
            // The whole structure is walked after a clear and at the end of every input;
            // grace, sync and fail_nth touch no mapping (TLB and counters were checked).
            Command::Clear { .. } => return self.check_all(),
            Command::Grace { .. }
            | Command::Sync { .. }
            | Command::FailNth { .. }
            | Command::Attach { .. } => return Ok(()),
            Command::Domain { .. } | Command::Ioasid(_) => return Ok(()),
        };
        // The whole range in one in-order pass; samples just outside and in the middle go
        // through the full translation.
        let samples = [lo.wrapping_sub(g), hi, lo + (hi - lo) / 2];
        if self.is_short() {
            let mut short = [0u64; 3];
            let mut n = 0;
            for a in samples.into_iter().filter(|&a| a < ia_end) {
                short[n] = a;
                n += 1;
            }
            return check_short_range_logged(&self.engine, &self.model, lo, hi, &short[..n]);
        }
        check_range_logged(&self.engine, &self.model, lo, hi, &samples)
    }

    /// The allocator's counters against the model's prediction of every table.
    fn check_counters(&self) -> Result<(), Divergence> {
        let e = self.engine.counters();
        let m = self.model.counters();
        let pairs = [
            (Counter::Allocated, e.allocated, m.allocated),
            (Counter::Live, e.live, m.live),
            (Counter::Deferred, e.deferred, m.deferred),
            (Counter::Freed, e.freed, m.freed),
            (Counter::Failed, e.failed, m.failed),
            (Counter::Pooled, e.pooled, self.model.pooled()),
            // A fresh frame carved while a released one was free shows here.
            (
                Counter::BackedFrames,
                self.engine.mem().frames(),
                self.model.backed_frames(),
            ),
        ];
        match pairs.iter().find(|(_, a, b)| a != b) {
            None => Ok(()),
            Some(&(c, a, b)) => Err(CounterFinding::new(c, a, b).into()),
        }
    }

    /// Everything: every leaf, the table structure, the counters, the custom hooks.
    pub fn check_all(&mut self) -> Result<(), Divergence> {
        if !self.page_table_oracles {
            // PTFUZZ_QEMU_ONLY: no structure walk either.
        } else if self.is_short() {
            check_short_domain_logged(&self.engine, &self.model)?;
        } else {
            check_domain_logged(&self.engine, &self.model, &[])?;
        }
        if let Some(h) = &self.hooks {
            let c = self.engine.counters();
            let (allocs, frees) = h.get();
            if allocs != c.pages_taken || frees != c.pages_released {
                return Err(AllocHooksFinding::Calls {
                    allocs,
                    frees,
                    allocated: c.pages_taken,
                    freed: c.pages_released,
                }
                .into());
            }
        }
        Ok(())
    }

    pub fn ops(&self) -> usize {
        self.ops
    }
}

/// The engine-side stack: TLB and break-before-make, frame accounting, counters and the
/// walker over the op's range after each op; the whole structure and the hooks at the end.
impl Oracle for CheckedDomain {
    fn after_op(&mut self, op: usize, cmd: &Command, out: &Outcome) -> Result<(), Divergence> {
        self.check_after(cmd, out).map_err(|d| d.at(op))
    }

    fn at_end(&mut self) -> Result<(), Divergence> {
        self.check_all()
    }
}

impl Drop for CheckedDomain {
    fn drop(&mut self) {
        let t = self.tlb.stats();
        let (f, b) = (self.frames.stats(), self.budget.stats);
        super::totals::add(&super::OracleTotals {
            domains: 1,
            ops: self.ops as u64,
            tlb_breaks: t.breaks,
            tlb_table_breaks: t.table_breaks,
            invalidations: t.all + t.walks + t.leaves,
            table_frees_checked: t.defers_checked,
            frame_checks: f.checks,
            frames_accounted: f.frames,
            poison_checked: f.poison_checked,
            jobs_prepared: b.prepared,
            jobs_run: b.run,
            pages_reserved: b.reserved,
            pages_used: b.used,
        });
    }
}

/// Runs `f`, turning a panic into a failure so one crash does not hide the rest of a run.
pub(crate) fn guarded<T>(who: &'static str, f: impl FnOnce() -> T) -> Result<T, FailureKind> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        FailureKind::Panic { who, msg }
    })
}
