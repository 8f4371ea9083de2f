//! Device-visible table writes: break-before-make, breaks, and where tables sit.

use ptfuzz_engine::DeviceWrite;

use super::entry::EntryKind;
use super::frames::State;
use super::pending::Break;
use super::TlbOracle;
use crate::divergence::Divergence;
use crate::finding::TlbFinding;

impl TlbOracle {
    pub(super) fn span_shift(&self, level: u32) -> u32 {
        self.layout.shift(level)
    }

    /// Bytes of IOVA one table at `level` covers (the span of its parent entry).
    pub(super) fn table_span(&self, level: u32) -> u128 {
        (self.layout.entries_at(level) as u128) << self.span_shift(level)
    }

    /// First IOVA and span of the entry at slot `idx` of a table at (`level`, `base`): a
    /// repeated leaf covers its whole aligned page.
    fn entry_span(&self, level: u32, base: u64, idx: u32, shift: u32) -> (u64, u32) {
        let iova = base + (u64::from(idx) << self.span_shift(level));
        (iova & !((1u64 << shift) - 1), shift)
    }

    /// One logged 8-byte word: one LPAE descriptor, or two short descriptors (each
    /// checked when its half changed).
    pub(super) fn write(&mut self, op: usize, w: &DeviceWrite) -> Result<(), Divergence> {
        if !w.pa.is_multiple_of(8) {
            return Ok(());
        }
        if self.layout.desc_bytes() == 8 {
            return self.write_desc(op, w.seq, w.pa, w.old, w.new);
        }
        let mut first = Ok(());
        for half in 0..2u64 {
            let (old, new) = ((w.old >> (32 * half)) as u32, (w.new >> (32 * half)) as u32);
            if old != new {
                let r = self.write_desc(op, w.seq, w.pa + 4 * half, old.into(), new.into());
                if first.is_ok() {
                    first = r;
                }
            }
        }
        first
    }

    fn write_desc(
        &mut self,
        op: usize,
        seq: u64,
        pa: u64,
        old: u64,
        new: u64,
    ) -> Result<(), Divergence> {
        let w = DeviceWrite { seq, pa, old, new };
        let layout = self.layout;
        let Some((start, f)) = self.frames.find_mut(w.pa) else {
            // Not a table the oracle knows (free or poisoned memory): nothing reaches it.
            return Ok(());
        };
        let idx = ((w.pa - start) / layout.desc_bytes()) as u32;
        let (state, level, base) = (f.state, f.level, f.base);
        if matches!(state, State::Deferred { .. }) {
            return Ok(());
        }
        let old_k = layout.decode(level, w.old);
        let new_k = layout.decode(level, w.new);
        f.set_word(idx, w.new, new_k.is_some());
        if state == State::Unplaced || u64::from(idx) >= layout.entries_at(level) || w.old == w.new
        {
            return Ok(());
        }
        let iova = base + (u64::from(idx) << self.span_shift(level));
        let (old_k, new_k) = (old_k, new_k.map(|d| d.kind));
        let mut err = None;
        if new_k.is_some() {
            if let Some(b) = self.pending.get(w.pa) {
                err = Some(Divergence::new(TlbFinding::BbmNotInvalidated {
                    op,
                    iova,
                    level,
                    old: b.old,
                    new: w.new,
                    slot: w.pa,
                    broken_at: b.seq,
                    seq: w.seq,
                }));
            } else if old_k.is_some() {
                err = Some(Divergence::new(TlbFinding::BbmInPlace {
                    op,
                    iova,
                    level,
                    old: w.old,
                    new: w.new,
                    slot: w.pa,
                    seq: w.seq,
                }));
            }
        }
        // Entries of a table whose unlink was already invalidated cannot be in any cache.
        let cacheable = !matches!(
            state,
            State::Unlinked {
                invalidated: true,
                ..
            }
        );
        if let Some(d) = old_k {
            let k = d.kind;
            if cacheable {
                let (iova, shift) = self.entry_span(level, base, idx, d.shift);
                self.add_break(Break {
                    seq: w.seq,
                    slot: w.pa,
                    kind: k,
                    level,
                    iova,
                    shift,
                    old: w.old,
                    under: None,
                    whole: d.whole,
                });
            }
            if let EntryKind::Table(child) = k {
                self.unlink(child, w.seq, w.pa);
            }
        }
        if let Some(EntryKind::Table(child)) = new_k {
            let twice = state == State::Linked
                && self
                    .frames
                    .get(child)
                    .is_some_and(|f| f.state == State::Linked);
            if twice && err.is_none() {
                err = Some(Divergence::new(TlbFinding::TableLinkedTwice {
                    op,
                    table: child,
                    desc: w.new,
                    slot: w.pa,
                    iova,
                    level,
                    seq: w.seq,
                }));
            }
            // Below an unlinked table a new table is unreachable too.
            self.place(child, level + 1, iova, state);
        }
        err.map_or(Ok(()), Err)
    }

    fn add_break(&mut self, b: Break) {
        self.stats.breaks += 1;
        if b.kind != EntryKind::Leaf {
            self.stats.table_breaks += 1;
        }
        self.pending.insert(b);
    }

    /// The table at `child` became unreachable at `seq` (its parent entry, or the entry
    /// `top` above it, was cleared): it and every valid entry below it may still be cached.
    fn unlink(&mut self, child: u64, seq: u64, top: u64) {
        let Some(f) = self.frames.at_mut(child) else {
            return;
        };
        if f.state != State::Linked {
            return;
        }
        f.state = State::Unlinked {
            seq,
            invalidated: false,
        };
        if f.is_empty() {
            return;
        }
        let (level, base) = (f.level, f.base);
        let layout = self.layout;
        let entries = usize::try_from(layout.entries_at(level)).unwrap_or(usize::MAX);
        // Walked out of the map (breaks and grandchildren change other state meanwhile),
        // then put back.
        let words = f.take_words();
        for (i, &d) in words.iter().enumerate().take(entries) {
            let i = i as u32;
            let Some(dec) = layout.decode(level, d) else {
                continue;
            };
            let k = dec.kind;
            let (iova, shift) = self.entry_span(level, base, i, dec.shift);
            self.add_break(Break {
                seq,
                slot: child + u64::from(i) * layout.desc_bytes(),
                kind: k,
                level,
                iova,
                shift,
                old: d,
                under: Some(top),
                whole: dec.whole,
            });
            if let EntryKind::Table(gc) = k {
                self.unlink(gc, seq, top);
            }
        }
        if let Some(f) = self.frames.at_mut(child) {
            f.put_words(words);
        }
    }

    /// A table descriptor now points at `child` from an entry at `level - 1` whose span
    /// starts at `base`: place it (and every table already linked below it).
    fn place(&mut self, child: u64, level: u32, base: u64, state: State) {
        let layout = self.layout;
        if level > layout.last_level() || level <= layout.start_level() {
            return;
        }
        let Some(f) = self.frames.entry(child, layout.table_bytes(self.unit)) else {
            return;
        };
        if matches!(f.state, State::Deferred { .. }) {
            // A link to a freed table: the walker reports it.
            return;
        }
        f.state = state;
        f.level = level;
        f.base = base;
        self.stats.placed += 1;
        let entries = layout.entries_at(level);
        let kids: Vec<(u32, u64)> = f
            .valid_words(entries)
            .filter_map(|(i, d)| match layout.decode(level, d).map(|d| d.kind) {
                Some(EntryKind::Table(gc)) => Some((i, gc)),
                _ => None,
            })
            .collect();
        let shift = self.span_shift(level);
        for (i, gc) in kids {
            self.place(gc, level + 1, base + (u64::from(i) << shift), state);
        }
    }
}
