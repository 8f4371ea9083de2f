//! A simulated physical address space holding page-table frames.
//!
//! Two views: what the CPU wrote, and what a non-coherent device walker can see. A write
//! reaches the device view only through [`PhysMem::sync`], so a missing cache maintenance
//! step in the engine shows up as a difference an oracle can observe.

use std::cell::RefCell;

use crate::events::{next_seq, DeviceWrite};

/// Word buffers of dropped [`PhysMem`]s, kept per thread so that the next domain grows into
/// memory that is already mapped: a fuzzer creates one domain per input, and growing fresh
/// vectors frame by frame spent most of its time in `realloc` copies and page faults.
/// Only buffers up to [`POOL_MAX_WORDS`] are kept, at most [`POOL_MAX`] of them.
const POOL_MAX: usize = 8;
const POOL_MAX_WORDS: usize = 4 << 20; // 32 MiB

thread_local! {
    static POOL: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer, with the largest capacity the pool holds.
fn take_buffer() -> Vec<u64> {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

fn return_buffer(mut v: Vec<u64>) {
    if v.capacity() == 0 || v.capacity() > POOL_MAX_WORDS {
        return;
    }
    v.clear();
    // `try_with`: a buffer dropped while the thread exits is simply freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(v);
            // Largest last, so `take_buffer` hands out the roomiest one.
            p.sort_unstable_by_key(Vec::capacity);
        }
    });
}

/// Frames of one granule each, from `base` upwards, grown on demand.
#[derive(Debug)]
pub struct PhysMem {
    base: u64,
    frame_shift: u32,
    cpu: Vec<u64>,
    /// `None` when the walker is coherent: the device then sees `cpu` directly.
    dev: Option<Vec<u64>>,
    /// When logging: every device-visible change.
    log: Option<Vec<DeviceWrite>>,
    /// When logging a coherent domain: the device view as of the last sync point, so that
    /// changes are logged where the engine publishes them. (A non-coherent domain's `dev`
    /// is that view already.)
    shadow: Option<Vec<u64>>,
}

impl Clone for PhysMem {
    fn clone(&self) -> PhysMem {
        let copy = |v: &Vec<u64>| {
            let mut c = take_buffer();
            c.extend_from_slice(v);
            c
        };
        PhysMem {
            base: self.base,
            frame_shift: self.frame_shift,
            cpu: copy(&self.cpu),
            dev: self.dev.as_ref().map(copy),
            log: self.log.clone(),
            shadow: self.shadow.as_ref().map(copy),
        }
    }
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        return_buffer(std::mem::take(&mut self.cpu));
        if let Some(d) = self.dev.take() {
            return_buffer(d);
        }
        if let Some(s) = self.shadow.take() {
            return_buffer(s);
        }
    }
}

impl PhysMem {
    pub fn new(base: u64, frame_shift: u32, coherent: bool) -> PhysMem {
        PhysMem {
            base,
            frame_shift,
            cpu: take_buffer(),
            dev: if coherent { None } else { Some(take_buffer()) },
            log: None,
            shadow: None,
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn frame_size(&self) -> u64 {
        1 << self.frame_shift
    }

    pub fn is_coherent(&self) -> bool {
        self.dev.is_none()
    }

    /// Number of frames backed so far.
    pub fn frames(&self) -> u64 {
        (self.cpu.len() as u64 * 8) >> self.frame_shift
    }

    /// One past the last backed physical address.
    pub fn end(&self) -> u64 {
        self.base + self.cpu.len() as u64 * 8
    }

    pub fn contains(&self, pa: u64, len: u64) -> bool {
        pa >= self.base && pa.checked_add(len).is_some_and(|e| e <= self.end())
    }

    /// Backs `n` more zeroed frames; returns the address of the first.
    pub fn grow(&mut self, n: u64) -> u64 {
        let pa = self.end();
        let words = self.cpu.len() + ((n << self.frame_shift) >> 3) as usize;
        self.cpu.resize(words, 0);
        if let Some(d) = &mut self.dev {
            d.resize(words, 0);
        }
        if let Some(shadow) = &mut self.shadow {
            shadow.resize(words, 0);
        }
        pa
    }

    /// Starts (or stops) recording device-visible changes.
    pub fn set_logging(&mut self, on: bool) {
        self.log = on.then(Vec::new);
        if let Some(s) = self.shadow.take() {
            return_buffer(s);
        }
        if on && self.dev.is_none() {
            let mut s = take_buffer();
            s.extend_from_slice(&self.cpu);
            self.shadow = Some(s);
        }
    }

    /// Takes the device writes recorded so far.
    pub fn take_log(&mut self) -> Vec<DeviceWrite> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Hands the device writes recorded so far to `buf` and keeps `buf`'s storage, cleared,
    /// for the next ones: a caller that drains the log after every op allocates it once.
    pub fn swap_log(&mut self, buf: &mut Vec<DeviceWrite>) {
        buf.clear();
        if let Some(log) = &mut self.log {
            std::mem::swap(log, buf);
        }
    }

    /// Records the words of `[w, w + n)` whose device view is about to change to `cpu`.
    #[cold]
    fn log_range(&mut self, w: usize, n: usize) {
        let _p = crate::noalloc::Pause::new(); // the device log is instrumentation
        let Some(log) = &mut self.log else {
            return;
        };
        let Some(old) = self.dev.as_deref().or(self.shadow.as_deref()) else {
            return;
        };
        let base = self.base;
        let cpu = &self.cpu;
        if old[w..w + n] == cpu[w..w + n] {
            return;
        }
        let first = log.len();
        log.extend(
            (w..w + n)
                .filter(|&i| old[i] != cpu[i])
                .map(|i| DeviceWrite {
                    seq: 0,
                    pa: base + 8 * i as u64,
                    old: old[i],
                    new: cpu[i],
                }),
        );
        for d in &mut log[first..] {
            d.seq = next_seq();
        }
        // A non-coherent view is updated by the caller; the coherent shadow here.
        if let Some(shadow) = &mut self.shadow {
            for d in &log[first..] {
                shadow[((d.pa - base) >> 3) as usize] = d.new;
            }
        }
    }

    #[inline(always)]
    fn word(&self, pa: u64) -> usize {
        debug_assert!(pa.is_multiple_of(8) && pa >= self.base);
        ((pa - self.base) >> 3) as usize
    }

    /// The CPU view of the 8-byte word at `pa`.
    #[inline(always)]
    pub fn read(&self, pa: u64) -> u64 {
        self.cpu[self.word(pa)]
    }

    /// Writes the CPU view only.
    #[inline(always)]
    pub fn write(&mut self, pa: u64, value: u64) {
        let w = self.word(pa);
        self.cpu[w] = value;
    }

    /// Writes the CPU view and makes the word visible to the device at once.
    #[inline(always)]
    pub fn write_sync(&mut self, pa: u64, value: u64) {
        let w = self.word(pa);
        self.cpu[w] = value;
        if self.log.is_some() {
            self.log_range(w, 1);
        }
        if let Some(d) = &mut self.dev {
            d[w] = value;
        }
    }

    /// The CPU view of the 4-byte word at `pa` (little-endian, as a 32-bit descriptor sits
    /// in memory: the low half of an 8-byte word at `pa % 8 == 0`).
    #[inline(always)]
    pub fn read32(&self, pa: u64) -> u32 {
        (self.cpu[self.word(pa & !7)] >> (8 * (pa & 4))) as u32
    }

    /// Writes the 4-byte word at `pa` in the CPU view and makes it visible to the device
    /// at once (the containing 8-byte word is what the device log records).
    #[inline(always)]
    pub fn write32_sync(&mut self, pa: u64, value: u32) {
        debug_assert!(pa.is_multiple_of(4));
        let w = self.word(pa & !7);
        let sh = 8 * (pa & 4);
        self.cpu[w] = (self.cpu[w] & !(0xffff_ffff << sh)) | ((value as u64) << sh);
        if self.log.is_some() {
            self.log_range(w, 1);
        }
        if let Some(d) = &mut self.dev {
            d[w] = self.cpu[w];
        }
    }

    /// CPU view of `n` words from `pa`.
    #[inline(always)]
    pub fn words(&self, pa: u64, n: usize) -> &[u64] {
        let w = self.word(pa);
        &self.cpu[w..w + n]
    }

    #[inline(always)]
    pub fn words_mut(&mut self, pa: u64, n: usize) -> &mut [u64] {
        let w = self.word(pa);
        &mut self.cpu[w..w + n]
    }

    /// Cleans `len` bytes from `pa` to the device view (a no-op when coherent).
    #[inline(always)]
    pub fn sync(&mut self, pa: u64, len: u64) {
        let w = ((pa - self.base) >> 3) as usize;
        let n = (len >> 3) as usize;
        if self.log.is_some() {
            self.log_range(w, n);
        }
        if let Some(d) = &mut self.dev {
            let (dev, cpu) = (&mut d[w..w + n], &self.cpu[w..w + n]);
            // Most cleans find nothing to do (a whole-table sync of a synced table).
            if dev != cpu {
                dev.copy_from_slice(cpu);
            }
        }
    }

    /// Fills `len` bytes from `pa` with `value` in both views (poisoning, zeroing).
    pub fn fill_both(&mut self, pa: u64, len: u64, value: u64) {
        let w = self.word(pa);
        let n = (len >> 3) as usize;
        self.cpu[w..w + n].fill(value);
        // Frames are filled only while unlinked (zeroed before use, poisoned after the
        // grace period): no walker can see them, so the fill is not logged.
        if let Some(shadow) = &mut self.shadow {
            shadow[w..w + n].fill(value);
        }
        if let Some(d) = &mut self.dev {
            d[w..w + n].fill(value);
        }
    }

    /// The device view of the word at `pa`, or `None` outside backed memory: what a
    /// hardware walker (or an oracle standing in for one) reads.
    pub fn read_device(&self, pa: u64) -> Option<u64> {
        if !pa.is_multiple_of(8) || !self.contains(pa, 8) {
            return None;
        }
        let w = self.word(pa);
        Some(match &self.dev {
            Some(d) => d[w],
            None => self.cpu[w],
        })
    }

    /// The whole device view, from `base`, e.g. to load into a guest's RAM.
    pub fn device_view(&self) -> &[u64] {
        self.dev.as_deref().unwrap_or(&self.cpu)
    }

    /// The whole CPU view, from `base`.
    pub fn cpu_view(&self) -> &[u64] {
        &self.cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_sees_writes_only_after_sync() {
        let mut m = PhysMem::new(0x1000_0000, 12, false);
        let f = m.grow(1);
        m.write(f + 8, 0xabc3);
        assert_eq!(m.read(f + 8), 0xabc3);
        assert_eq!(m.read_device(f + 8), Some(0));
        m.sync(f, 4096);
        assert_eq!(m.read_device(f + 8), Some(0xabc3));
        m.write_sync(f + 16, 7);
        assert_eq!(m.read_device(f + 16), Some(7));
    }

    #[test]
    fn coherent_device_reads_cpu_view() {
        let mut m = PhysMem::new(0, 12, true);
        let f = m.grow(2);
        m.write(f + 4096, 5);
        assert_eq!(m.read_device(f + 4096), Some(5));
        assert_eq!(m.read_device(f + 8192), None, "past the end");
        assert_eq!(m.read_device(f + 4), None, "unaligned");
        assert_eq!(m.frames(), 2);
    }

    #[test]
    fn swap_log_hands_over_the_writes_and_keeps_the_storage() {
        let mut m = PhysMem::new(0, 12, true);
        let f = m.grow(1);
        m.set_logging(true);
        m.write_sync(f + 8, 3);
        let stale = DeviceWrite {
            seq: 0,
            pa: 0,
            old: 0,
            new: 0,
        };
        let mut buf = Vec::with_capacity(64);
        buf.push(stale);
        let storage = buf.as_ptr();
        m.swap_log(&mut buf);
        let got: Vec<_> = buf.iter().map(|w| (w.pa, w.old, w.new)).collect();
        assert_eq!(
            got,
            [(f + 8, 0, 3)],
            "the stale entry is gone, the write handed over"
        );
        m.write_sync(f + 16, 5);
        let mut again = Vec::new();
        m.swap_log(&mut again);
        let got: Vec<_> = again.iter().map(|w| (w.pa, w.old, w.new)).collect();
        assert_eq!(got, [(f + 16, 0, 5)]);
        assert_eq!(
            again.as_ptr(),
            storage,
            "the next writes went into the storage given back"
        );
    }
}
