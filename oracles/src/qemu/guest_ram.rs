//! What the guest RAM of one QEMU holds in the table window, as far as the oracle knows,
//! so that an upload writes only the 8-byte words that differ: a new input's tables mostly
//! repeat the bytes the last one left (empty tables at the same addresses), and qtest
//! carries every byte as two hex digits through QEMU's main loop, 1 KiB per iteration.
//!
//! Known words are those the oracle wrote. Whatever may have written the window behind its
//! back (a DMA that did not land where predicted, a context descriptor placed there) makes
//! it forget: those words are written again in full the next time.

use std::ops::Range;

/// Words per 4 KiB page.
const PAGE_WORDS: usize = 512;
const PAGE_BYTES: u64 = 4096;

/// Two writes closer than this many unchanged words are sent as one (a `write` command
/// costs about as much as two words of hex).
const MERGE_GAP: usize = 2;

#[derive(Clone)]
struct Page {
    words: [u64; PAGE_WORDS],
    /// Bit i of `known[i / 64]`: word i is known.
    known: [u64; PAGE_WORDS / 64],
}

impl Page {
    fn unknown() -> Page {
        Page {
            words: [0; PAGE_WORDS],
            known: [0; PAGE_WORDS / 64],
        }
    }

    fn is_known(&self, i: usize) -> bool {
        self.known[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, w: u64) {
        self.words[i] = w;
        self.known[i / 64] |= 1 << (i % 64);
    }

    fn all_known(&self) -> bool {
        self.known.iter().all(|&k| k == u64::MAX)
    }
}

/// The oracle's record of guest RAM in one window (8-byte aligned words, by physical
/// address), one slot per 4 KiB page.
pub struct GuestRam {
    window: Range<u64>,
    pages: Vec<Option<Box<Page>>>,
}

impl GuestRam {
    /// Nothing known about `window` (4 KiB aligned) yet.
    pub fn new(window: Range<u64>) -> GuestRam {
        let n = ((window.end - window.start) / PAGE_BYTES) as usize;
        GuestRam {
            window,
            pages: (0..n).map(|_| None).collect(),
        }
    }

    /// Forgets everything: the next upload writes every word.
    pub fn forget_all(&mut self) {
        self.pages.iter_mut().for_each(|p| *p = None);
    }

    /// Forgets `[pa, pa + len)` (where it lies in the window).
    pub fn forget(&mut self, pa: u64, len: u64) {
        let mut page = pa & !(PAGE_BYTES - 1);
        while page < pa.saturating_add(len) {
            if let Some(slot) = self.slot(page) {
                self.pages[slot] = None;
            }
            page += PAGE_BYTES;
        }
    }

    fn slot(&self, page_pa: u64) -> Option<usize> {
        self.window
            .contains(&page_pa)
            .then(|| ((page_pa - self.window.start) / PAGE_BYTES) as usize)
    }

    /// Makes guest RAM at `base` hold `words` (8-byte aligned, inside the window): returns
    /// the writes that differ from what it is known to hold, as (address, little-endian
    /// bytes), nearby ones merged, and records the words as known.
    pub fn update(&mut self, base: u64, words: &[u64]) -> Vec<(u64, Vec<u8>)> {
        debug_assert_eq!(base % 8, 0);
        assert!(
            base >= self.window.start && base + 8 * words.len() as u64 <= self.window.end,
            "{base:#x}+{} words outside {:x?}",
            words.len(),
            self.window
        );
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        // The run being built: its first word's address and its words.
        let mut run: Option<(u64, Vec<u64>)> = None;
        let mut gap = 0usize;
        let flush = |run: &mut Option<(u64, Vec<u64>)>, out: &mut Vec<(u64, Vec<u8>)>| {
            if let Some((a, ws)) = run.take() {
                out.push((a, ws.iter().flat_map(|w| w.to_le_bytes()).collect()));
            }
        };
        let mut i = 0usize;
        while i < words.len() {
            let pa = base + 8 * i as u64;
            let page_pa = pa & !(PAGE_BYTES - 1);
            let first = ((pa - page_pa) / 8) as usize;
            let n = (PAGE_WORDS - first).min(words.len() - i);
            let slot = ((page_pa - self.window.start) / PAGE_BYTES) as usize;
            let page = self.pages[slot].get_or_insert_with(|| Box::new(Page::unknown()));
            if page.all_known() && page.words[first..first + n] == words[i..i + n] {
                // Unchanged: ends a run once the gap is long enough.
                gap += n;
                if gap > MERGE_GAP {
                    flush(&mut run, &mut out);
                    gap = 0;
                }
                i += n;
                continue;
            }
            for k in 0..n {
                let (slot, w) = (first + k, words[i + k]);
                let same = page.is_known(slot) && page.words[slot] == w;
                let at = pa + 8 * k as u64;
                match (&mut run, same) {
                    (Some((_, ws)), false) => {
                        // Bridge a short gap of unchanged words with their (known) values.
                        let start = i + k - gap;
                        ws.extend_from_slice(&words[start..i + k]);
                        ws.push(w);
                        gap = 0;
                    }
                    (None, false) => {
                        run = Some((at, vec![w]));
                        gap = 0;
                    }
                    (Some(_), true) => {
                        gap += 1;
                        if gap > MERGE_GAP {
                            flush(&mut run, &mut out);
                            gap = 0;
                        }
                    }
                    (None, true) => {}
                }
                page.set(slot, w);
            }
            // No write spans pages: commands stay at most 4 KiB, as the chunked uploads
            // before were (QEMU's qtest reads 1 KiB per main-loop turn).
            flush(&mut run, &mut out);
            gap = 0;
            i += n;
        }
        flush(&mut run, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(writes: &[(u64, Vec<u8>)]) -> Vec<(u64, Vec<u64>)> {
        writes
            .iter()
            .map(|(a, b)| {
                let ws = b
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                (*a, ws)
            })
            .collect()
    }

    #[test]
    fn unknown_words_are_written_then_only_changes() {
        let mut g = GuestRam::new(0x4000_0000..0x5000_0000);
        let base = 0x4000_0ff0;
        let mut words = vec![0u64; 8];
        // Spans two pages: everything is written once, a write per page.
        assert_eq!(
            flat(&g.update(base, &words)),
            vec![
                (base, words[..2].to_vec()),
                (base + 16, words[2..].to_vec())
            ]
        );
        assert!(g.update(base, &words).is_empty());
        words[1] = 7;
        words[6] = 9;
        assert_eq!(
            flat(&g.update(base, &words)),
            vec![(base + 8, vec![7]), (base + 48, vec![9])]
        );
    }

    #[test]
    fn close_changes_merge_with_the_known_words_between() {
        let mut g = GuestRam::new(0x4000_0000..0x5000_0000);
        let base = 0x4000_0000;
        let mut words = vec![1u64; 16];
        g.update(base, &words);
        words[2] = 5;
        words[5] = 6; // two unchanged words between: one write
        words[12] = 8; // six between: a write of its own
        assert_eq!(
            flat(&g.update(base, &words)),
            vec![(base + 16, vec![5, 1, 1, 6]), (base + 96, vec![8])]
        );
    }

    #[test]
    fn forgotten_pages_are_written_again() {
        let mut g = GuestRam::new(0x4000_0000..0x5000_0000);
        let base = 0x4000_0000;
        let words = vec![3u64; 1024];
        g.update(base, &words);
        g.forget(base + 4096 + 64, 8);
        let w = flat(&g.update(base, &words));
        assert_eq!(w, vec![(base + 4096, vec![3; 512])]);
        g.forget_all();
        assert_eq!(
            flat(&g.update(base, &words)),
            vec![(base, vec![3; 512]), (base + 4096, vec![3; 512])]
        );
    }
}
