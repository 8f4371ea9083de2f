//! Table frames as the oracle learns them from the logs: where each table sits in the
//! translation (level, first IOVA), whether it is reachable, and a shadow of its valid
//! words (so that unlinking a table makes every entry below it stale, and linking a table
//! filled before it was linked places its children too).

use std::collections::BTreeMap;

use crate::recycle::Spares;

/// Words a frame's shadow starts with room for (a 4K table has 512).
const FIRST_WORDS: usize = 64;

thread_local! {
    /// Shadows of dropped frames (crate::recycle).
    static SPARE_WORDS: Spares<Vec<u64>> = const { Spares::new(64) };
}

/// Life of one table frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Allocated, not reachable from the root (yet): nothing in it can be cached.
    Unplaced,
    /// Reachable from the root (the root itself, or linked by a table descriptor).
    Linked,
    /// Its parent entry was cleared (or a table above it was unlinked); `invalidated` once
    /// an invalidation covering that parent entry has been seen.
    Unlinked { seq: u64, invalidated: bool },
    /// Freed, waiting for the grace period (`seq` of the Defer).
    Deferred { seq: u64 },
}

#[derive(Clone, Debug)]
pub struct Frame {
    /// Size in bytes.
    pub len: u64,
    pub state: State,
    /// Lookup level and first IOVA, meaningful once placed (Linked / Unlinked).
    pub level: u32,
    pub base: u64,
    /// Valid descriptors by index, 0 for invalid ones; grown on demand up to the
    /// highest index written (a dense array: tables are small and mostly written in runs).
    words: Vec<u64>,
    /// How many of `words` are valid: an empty table (the usual one to be unlinked) is
    /// then not scanned at all.
    valid: u32,
}

impl Frame {
    pub fn new(len: u64, state: State) -> Frame {
        Frame {
            len,
            state,
            level: 0,
            base: 0,
            words: Vec::new(),
            valid: 0,
        }
    }

    /// Records the descriptor at `idx`: kept when `valid` (a valid descriptor is never 0),
    /// forgotten otherwise.
    pub fn set_word(&mut self, idx: u32, d: u64, valid: bool) {
        let i = idx as usize;
        if valid && d != 0 {
            if i >= self.words.len() {
                // Tables are written in runs from low indices: start with room for a run
                // instead of growing through every power of two.
                if self.words.capacity() == 0 {
                    if let Some(spare) = Spares::take(&SPARE_WORDS) {
                        self.words = spare;
                    }
                    let entries = usize::try_from(self.len / 8).unwrap_or(usize::MAX);
                    self.words.reserve(FIRST_WORDS.min(entries).max(i + 1));
                }
                self.words.resize(i + 1, 0);
            }
            self.valid += u32::from(self.words[i] == 0);
            self.words[i] = d;
        } else if let Some(w) = self.words.get_mut(i) {
            self.valid -= u32::from(*w != 0);
            *w = 0;
        }
    }

    /// Whether no word is valid.
    pub fn is_empty(&self) -> bool {
        self.valid == 0
    }

    /// Takes the valid-word shadow out (to walk it while the oracle changes other frames);
    /// [`Frame::put_words`] puts it back.
    pub fn take_words(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.words)
    }

    pub fn put_words(&mut self, words: Vec<u64>) {
        self.words = words;
    }

    /// The valid words with index below `entries`, ascending: (index, descriptor).
    pub fn valid_words(&self, entries: u64) -> impl Iterator<Item = (u32, u64)> + '_ {
        let n = if self.valid == 0 {
            0
        } else {
            self.words
                .len()
                .min(usize::try_from(entries).unwrap_or(usize::MAX))
        };
        self.words[..n]
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d != 0)
            .map(|(i, &d)| (i as u32, d))
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if self.words.capacity() != 0 {
            let mut words = std::mem::take(&mut self.words);
            words.clear();
            Spares::give(&SPARE_WORDS, words);
        }
    }
}

/// Every frame the oracle knows, by start address.
#[derive(Debug, Default)]
pub struct Frames {
    map: BTreeMap<u64, Frame>,
}

impl Frames {
    /// The frame containing `pa`, with its start.
    pub fn find(&self, pa: u64) -> Option<(u64, &Frame)> {
        let (&start, f) = self.map.range(..=pa).next_back()?;
        (pa - start < f.len).then_some((start, f))
    }

    pub fn find_mut(&mut self, pa: u64) -> Option<(u64, &mut Frame)> {
        let (&start, f) = self.map.range_mut(..=pa).next_back()?;
        (pa - start < f.len).then_some((start, f))
    }

    /// The frame starting exactly at `pa`.
    pub fn at_mut(&mut self, pa: u64) -> Option<&mut Frame> {
        self.map.get_mut(&pa)
    }

    pub fn get(&self, pa: u64) -> Option<&Frame> {
        self.map.get(&pa)
    }

    /// Frames overlapping `[pa, pa + len)`, with their starts.
    pub fn overlapping(&self, pa: u64, len: u64) -> impl Iterator<Item = (u64, &Frame)> + '_ {
        let end = pa.saturating_add(len);
        let before = self.find(pa).filter(|&(s, _)| s < pa);
        before
            .into_iter()
            .chain(self.map.range(pa..end).map(|(&s, f)| (s, f)))
    }

    /// Replaces whatever overlaps `[pa, pa + f.len)` by `f`.
    pub fn insert(&mut self, pa: u64, f: Frame) {
        loop {
            let Some((s, _)) = self.overlapping(pa, f.len).next() else {
                break;
            };
            self.map.remove(&s);
        }
        self.map.insert(pa, f);
    }

    /// Start addresses of the frames reachable from the root, ascending.
    pub fn linked(&self) -> impl Iterator<Item = u64> + '_ {
        self.map
            .iter()
            .filter(|(_, f)| f.state == State::Linked)
            .map(|(&s, _)| s)
    }

    pub fn remove(&mut self, pa: u64) -> Option<Frame> {
        self.map.remove(&pa)
    }

    /// The frame at `pa`, created (`len` bytes, Unplaced) when unknown; `None` when `pa`
    /// lies inside another frame (a table descriptor pointing into the middle of one).
    pub fn entry(&mut self, pa: u64, len: u64) -> Option<&mut Frame> {
        match self.find(pa) {
            Some((s, _)) if s != pa => return None,
            Some(_) => {}
            None => {
                if self.overlapping(pa, len).next().is_some() {
                    return None;
                }
                self.map.insert(pa, Frame::new(len, State::Unplaced));
            }
        }
        self.map.get_mut(&pa)
    }
}
