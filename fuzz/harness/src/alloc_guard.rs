//! A global-allocator guard for the fuzz binaries and the bolero test: it forwards to the
//! system allocator and counts, per thread, every allocation made while the engine is
//! inside a no-allocate section (`ptfuzz_engine::noalloc`). The executor takes the count
//! after every op and reports a non-zero one with that op. Install with
//! `#[global_allocator] static GUARD: ptfuzz_harness::alloc_guard::Guard = Guard;`.
//! Without it installed the count stays zero and nothing is checked.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static HITS: Cell<u64> = const { Cell::new(0) };
}

/// The counting allocator.
pub struct Guard;

fn note() {
    if ptfuzz_engine::noalloc::active() {
        let _ = HITS.try_with(|h| h.set(h.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees carry over; the bookkeeping touches only a const-initialised thread-local
// `Cell` (no allocation, no destructor).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by this allocator (hence by `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (hence by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations counted on this thread since the last call.
pub fn take_hits() -> u64 {
    HITS.try_with(|h| h.replace(0)).unwrap_or(0)
}
