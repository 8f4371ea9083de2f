//! Once warm, executing an input frees at least as many heap blocks as it allocates.
//! libFuzzer runs every input that allocates more than it frees a second time, and then a
//! leak check over the whole heap, so storage that oracles keep across inputs
//! (`ptfuzz_oracles`' recycling, the engine's frame-buffer pool) must not leave an
//! execution unbalanced once the pools hold what the inputs need.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use ptfuzz_harness::run::{decode, execute};

thread_local! {
    // Per thread: the test harness allocates on other threads meanwhile.
    static MALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn bump(c: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: nothing to count while the thread's locals are torn down.
    let _ = c.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call goes unchanged to the system allocator; the counters are
// const-initialised thread locals without destructors, which allocate nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump(&MALLOCS);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        bump(&FREES);
        // SAFETY: `p` came from `System` with layout `l` (every allocation goes through it).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `n` is the caller's new size. A realloc is neither a
        // fresh allocation nor a free, as libFuzzer counts them.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counts() -> (u64, u64) {
    (MALLOCS.with(Cell::get), FREES.with(Cell::get))
}

#[test]
fn warm_executions_free_what_they_allocate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/pagetable");
    let mut inputs = Vec::new();
    for e in std::fs::read_dir(&dir).expect("corpus/pagetable exists") {
        let bytes = std::fs::read(e.expect("dir entry").path()).expect("readable seed");
        inputs.extend(decode(&bytes));
    }
    inputs.sort_by_key(|i| format!("{i:?}"));
    assert!(
        inputs.len() >= 5,
        "too few seeds to say anything: {}",
        inputs.len()
    );
    // The first pass fills the pools.
    for input in &inputs {
        let _ = execute(input);
    }
    let mut unbalanced = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        let (m0, f0) = counts();
        let ok = execute(input).is_ok(); // the trace is dropped before counting, as in the target
        let (m, f) = counts();
        assert!(ok, "seed {n} diverged");
        let (m, f) = (m - m0, f - f0);
        if m > f {
            unbalanced.push(format!("seed {n}: {m} allocations, {f} frees"));
        }
    }
    assert!(unbalanced.is_empty(), "{}", unbalanced.join("\n"));
}
