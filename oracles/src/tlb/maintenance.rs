//! Invalidations, the allocator's events (table free, reuse) and the end of an op.

use ptfuzz_engine::{AllocEvent, FlushEvent};

use super::entry::EntryKind;
use super::frames::{Frame, State};
use super::pending::{Break, Cover};
use super::TlbOracle;
use crate::divergence::Divergence;
use crate::finding::TlbFinding;

impl TlbOracle {
    pub(super) fn flush(&mut self, f: &FlushEvent) {
        // An invalidated table entry: the table below it can no longer be reached by a walk.
        let frames = &mut self.frames;
        let invalidated = |b: Break| {
            if let EntryKind::Table(child) = b.kind {
                if let Some(f) = frames.at_mut(child) {
                    if let State::Unlinked { seq, .. } = f.state {
                        f.state = State::Unlinked {
                            seq,
                            invalidated: true,
                        };
                    }
                }
            }
        };
        match *f {
            FlushEvent::All => {
                self.stats.all += 1;
                self.pending.take_all().into_iter().for_each(invalidated);
            }
            FlushEvent::Walk { iova, size, .. } => {
                self.stats.walks += 1;
                if size == 0 {
                    return;
                }
                let cover = Cover::Walk {
                    lo: iova,
                    hi: iova.saturating_add(size - 1),
                };
                let layout = self.layout;
                self.pending
                    .remove_covered(cover, |l| layout.max_shift(l), invalidated);
            }
            FlushEvent::Leaves { start, end, pgsize } => {
                self.stats.leaves += 1;
                if end < start {
                    return;
                }
                let cover = Cover::Leaves {
                    lo: start,
                    hi: end,
                    level: self.layout.ttl_level(pgsize),
                };
                let layout = self.layout;
                self.pending
                    .remove_covered(cover, |l| layout.max_shift(l), invalidated);
            }
        }
    }

    pub(super) fn alloc(&mut self, op: usize, seq: u64, a: &AllocEvent) -> Result<(), Divergence> {
        match *a {
            AllocEvent::Alloc { pa, frames, .. } => {
                let len = u64::from(frames.max(1)) * self.unit;
                let mut err = None;
                let mut keep_root = false;
                for (s, f) in self.frames.overlapping(pa, len) {
                    if let State::Deferred { seq: dseq } = f.state {
                        err.get_or_insert_with(|| {
                            Divergence::new(TlbFinding::ReusedBeforeGrace {
                                op,
                                table: s,
                                seq,
                                frame: pa,
                                frames,
                                deferred_at: dseq,
                            })
                        });
                    }
                    keep_root |= s == self.root;
                }
                if !keep_root {
                    // A frame allocated over the live root is the allocator's bug (the walker
                    // reports it); the oracle keeps following the root.
                    self.frames.insert(pa, Frame::new(len, State::Unplaced));
                }
                err.map_or(Ok(()), Err)
            }
            AllocEvent::Defer { pa, .. } => self.defer(op, seq, pa),
            AllocEvent::Release { pa, .. } => {
                if let Some(f) = self.frames.get(pa) {
                    if matches!(f.state, State::Deferred { .. }) {
                        self.frames.remove(pa);
                    }
                }
                Ok(())
            }
            AllocEvent::Fail { .. } => Ok(()),
        }
    }

    fn defer(&mut self, op: usize, seq: u64, pa: u64) -> Result<(), Divergence> {
        let granule = self.layout.table_bytes(self.unit);
        let is_root = pa == self.root;
        let span = |s: &Self, f: &Frame| {
            let lo = f.base;
            let hi = lo as u128 + s.table_span(f.level) - 1;
            (lo, hi as u64)
        };
        let Some(f) = self.frames.get(pa) else {
            self.frames
                .insert(pa, Frame::new(granule, State::Deferred { seq }));
            return Ok(());
        };
        let why = match f.state {
            State::Linked if is_root => Some(TlbFinding::RootDeferred { op, root: pa, seq }),
            State::Linked => Some(TlbFinding::FreedWhileLinked {
                op,
                table: pa,
                span: span(self, f),
                level: f.level,
                seq,
            }),
            State::Unlinked {
                seq: useq,
                invalidated: false,
            } => Some(TlbFinding::FreedBeforeWalkInvalidation {
                op,
                table: pa,
                span: span(self, f),
                level: f.level,
                unlinked_at: useq,
                seq,
            }),
            State::Unlinked {
                invalidated: true, ..
            }
            | State::Unplaced
            | State::Deferred { .. } => None,
        };
        if f.state != State::Unplaced {
            self.stats.defers_checked += 1;
        }
        let len = f.len;
        if !is_root {
            self.frames
                .insert(pa, Frame::new(len, State::Deferred { seq }));
        }
        why.map_or(Ok(()), |w| Err(w.into()))
    }

    /// Every break still pending at the end of an op is a stale cache entry.
    pub(super) fn end_op(&mut self, op: usize) -> Result<(), Divergence> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let left = self.pending.take_all();
        // The oldest break is the one reported.
        let Some(b) = left.iter().min_by_key(|b| (b.seq, b.slot)) else {
            return Ok(());
        };
        Err(TlbFinding::StaleTranslation {
            op,
            iova: b.iova,
            entry: b.kind.name(),
            level: b.level,
            old: b.old,
            slot: b.slot,
            last: b.last(),
            seq: b.seq,
            under: b.under,
            more: left.len() - 1,
        }
        .into())
    }
}
