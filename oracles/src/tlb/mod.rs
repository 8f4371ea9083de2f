//! The worst-case TLB / walk-cache oracle (DESIGN.md "Oracles", ARM-FACTS §6/§7,
//! SEMANTICS.md "TLB maintenance").
//!
//! It assumes every valid descriptor the device could reach may be cached: leaves in a TLB,
//! table descriptors in a walk cache. So every change of a reachable valid descriptor must
//! be invalidated before the op ends, and a table may only be freed after the invalidation
//! of its parent entry. It replays, in sequence order, the three logs the engine keeps
//! (device-visible table writes, allocator events, flush requests) and checks:
//!
//! - break-before-make: a valid word is never replaced by a different valid word, and a
//!   cleared word is not made valid again before an invalidation covers it;
//! - invalidation: every cleared entry, and every entry below an unlinked table, is covered
//!   by a later `All`, by a `Walk` overlapping its span (a leaf) or covering its whole span
//!   (a table entry: a walk cache may hold it for any address it covers), or by a `Leaves`
//!   overlapping its span (leaves only, and only at the level its page size names: the TTL
//!   hint, ARM-FACTS §7) before the op ends;
//! - table free: a table is deferred only after its parent entry was cleared and that break
//!   invalidated (`Walk` or `All`: a `Leaves` invalidation never covers a walk-cache entry);
//! - grace period: a deferred frame is not allocated again before it is released.
//!
//! It learns where each table sits from the writes themselves: a table descriptor written at
//! slot i of a table at (level l, base b) places the child at (l + 1, b + i * span(l)); the
//! root (a flat array at the start level, also when concatenated) is known from the start.
//! Descriptor decoding is per format (`format.rs`: LPAE with the walker's parameters, or the
//! Armv7 short descriptor, 4-byte descriptors two to a logged word), never the engine's. Per op, the
//! cost is O(n log n) in the log sizes, plus the size of any subtree the op unlinks.

mod entry;
mod format;
mod frames;
mod maintenance;
mod pending;
mod writes;

use ptfuzz_engine::config::DomainConfig;
use ptfuzz_engine::{AllocEvent, DeviceWrite, Domain, FlushEvent, OrderedFlushLog};

use crate::divergence::Divergence;
use crate::recycle::Spares;
use crate::walker::WalkParams;
pub use entry::{classify, ttl_level, EntryKind};
use format::Layout;
use frames::{Frame, Frames, State};
use pending::Pending;

/// One event of the merged logs.
#[derive(Clone, Copy, Debug)]
enum Event<'a> {
    Write(&'a DeviceWrite),
    Flush(&'a FlushEvent),
    Alloc(&'a AllocEvent),
}

fn alloc_seq(a: &AllocEvent) -> u64 {
    match *a {
        AllocEvent::Alloc { seq, .. }
        | AllocEvent::Defer { seq, .. }
        | AllocEvent::Release { seq, .. }
        | AllocEvent::Fail { seq } => seq,
    }
}

/// What the oracle has seen so far (to tell a silent oracle from an idle one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Entries made stale (cleared, or below an unlinked table).
    pub breaks: u64,
    /// Of those, table entries.
    pub table_breaks: u64,
    /// Invalidations seen, by kind.
    pub all: u64,
    pub walks: u64,
    pub leaves: u64,
    /// Tables placed in the translation by a table descriptor.
    pub placed: u64,
    /// Defers of tables that had been placed (checked against their unlink).
    pub defers_checked: u64,
}

/// Worst-case TLB and walk cache of one domain.
#[derive(Debug)]
pub struct TlbOracle {
    layout: Layout,
    /// Bytes of the allocator's smallest table (its frame unit: a granule, or 1 KiB for
    /// armv7s).
    unit: u64,
    root: u64,
    frames: Frames,
    pending: Pending,
    stats: TlbStats,
    /// The engine's logs of the op being checked; their storage goes back to the engine
    /// after each op, so draining them allocates nothing once warm.
    logs: Logs,
    /// The thread's event number when this oracle was made: findings give numbers from it,
    /// so the same input gives the same message however many inputs the thread ran before.
    seq_base: u64,
}

#[derive(Debug, Default)]
struct Logs {
    flushes: Vec<(u64, FlushEvent)>,
    writes: Vec<DeviceWrite>,
    allocs: Vec<AllocEvent>,
}

thread_local! {
    /// The pending-break map of a dropped oracle (crate::recycle). The log buffers are not
    /// kept: they change hands with the engine's after every op, so the ones an oracle
    /// holds when dropped are not the ones it took.
    static SPARE_PENDING: Spares<Pending> = const { Spares::new(1) };
}

impl Drop for TlbOracle {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.clear_and_trim();
        Spares::give(&SPARE_PENDING, pending);
    }
}

impl TlbOracle {
    /// An empty cache for a domain created from `cfg` whose root table is at `root_pa`,
    /// walked with `p` (the walker's parameters). The domain must be fresh (no valid entry
    /// yet) and its logs recorded from now on.
    pub fn new(cfg: &DomainConfig, root_pa: u64, p: &WalkParams) -> TlbOracle {
        // Given back empty; `reset` below clears it anyway.
        let pending = Spares::take(&SPARE_PENDING).unwrap_or_else(Pending::with_room);
        let mut o = TlbOracle {
            layout: Layout::new(cfg, p),
            unit: match cfg.format {
                ptfuzz_engine::FormatKind::Armv7s => 1024,
                _ => cfg.granule.size(),
            },
            root: root_pa,
            frames: Frames::default(),
            pending,
            stats: TlbStats::default(),
            logs: Logs::default(),
            seq_base: ptfuzz_engine::events::next_seq(),
        };
        o.reset(root_pa);
        o
    }

    /// Forgets everything (frames, pending breaks) and starts again from an empty root at
    /// `root_pa`.
    pub fn reset(&mut self, root_pa: u64) {
        self.root = root_pa;
        self.frames = Frames::default();
        self.pending.clear();
        let len = self.layout.root_bytes(self.unit);
        let mut f = Frame::new(len, State::Linked);
        f.level = self.layout.start_level();
        f.base = 0;
        self.frames.insert(root_pa, f);
    }

    /// Tables reachable from the root (the root included) after the ops checked so far, as
    /// the device-visible table descriptors place them.
    pub fn reachable_tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.frames.linked()
    }

    /// The flush requests of the op checked last, in order (for an oracle that forwards them
    /// to another cache model: QEMU's).
    pub fn last_flushes(&self) -> impl Iterator<Item = &FlushEvent> + '_ {
        self.logs.flushes.iter().map(|(_, f)| f)
    }

    /// Counters of what was checked since construction.
    pub fn stats(&self) -> TlbStats {
        self.stats
    }

    /// Drains `dom`'s three logs and checks them as op `op_index`.
    pub fn check_domain_op(
        &mut self,
        op_index: usize,
        dom: &mut Domain<OrderedFlushLog>,
    ) -> Result<(), Divergence> {
        let mut logs = std::mem::take(&mut self.logs);
        logs.flushes.clear();
        std::mem::swap(&mut dom.flush_ops_mut().events, &mut logs.flushes);
        dom.swap_device_log(&mut logs.writes);
        dom.swap_alloc_log(&mut logs.allocs);
        let r = self.check_op(op_index, &logs.flushes, &logs.writes, &logs.allocs);
        self.logs = logs;
        r
    }

    /// Replays the logs of op `op_index` in sequence order and checks them (see the module
    /// documentation). After a divergence the rest of the op is still replayed, so the
    /// oracle stays in step; the first divergence is returned.
    pub fn check_op(
        &mut self,
        op_index: usize,
        flushes: &[(u64, FlushEvent)],
        writes: &[DeviceWrite],
        allocs: &[AllocEvent],
    ) -> Result<(), Divergence> {
        // Each log is in sequence order already: merge them (on equal numbers, never
        // produced by the engine, flushes before writes before allocator events).
        let (mut f, mut w, mut a) = (0, 0, 0);
        let mut first: Option<Divergence> = None;
        loop {
            let fs = flushes.get(f).map_or(u64::MAX, |e| e.0);
            let ws = writes.get(w).map_or(u64::MAX, |e| e.seq);
            let as_ = allocs.get(a).map_or(u64::MAX, alloc_seq);
            let ev = if f < flushes.len() && fs <= ws && fs <= as_ {
                f += 1;
                Event::Flush(&flushes[f - 1].1)
            } else if w < writes.len() && ws <= as_ {
                w += 1;
                Event::Write(&writes[w - 1])
            } else if a < allocs.len() {
                a += 1;
                Event::Alloc(&allocs[a - 1])
            } else {
                break;
            };
            let r = match ev {
                Event::Write(e) => self.write(op_index, e),
                Event::Flush(e) => {
                    self.flush(e);
                    Ok(())
                }
                Event::Alloc(e) => self.alloc(op_index, as_, e),
            };
            if let Err(d) = r {
                first.get_or_insert(d);
            }
        }
        let end = self.end_op(op_index);
        match (first, end) {
            (Some(d), _) | (None, Err(d)) => Err(d.rebased(self.seq_base)),
            (None, Ok(())) => Ok(()),
        }
    }
}
