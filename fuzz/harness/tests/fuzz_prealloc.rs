//! The `prealloc` fuzz target under plain `cargo test` (bolero), with the allocation guard
//! installed: jobs, reservations and plain map/unmap interleaved, checked by the model, the
//! walker, the TLB oracle and the budget checker.

use ptfuzz_harness::alloc_guard::Guard;
use ptfuzz_harness::target::{Prealloc, Target};

#[global_allocator]
static GUARD: Guard = Guard;

#[test]
fn prealloc() {
    bolero::check!()
        .with_arbitrary::<<Prealloc as Target>::Input>()
        .for_each(Prealloc::fuzz_input);
}

/// The guard sees an allocation made inside a no-allocate section, and only there.
#[test]
fn guard_counts_only_inside_sections() {
    ptfuzz_harness::alloc_guard::take_hits();
    let v: Vec<u8> = Vec::with_capacity(10);
    assert_eq!(ptfuzz_harness::alloc_guard::take_hits(), 0);
    {
        let _s = ptfuzz_engine::noalloc::Section::enter();
        let w: Vec<u8> = Vec::with_capacity(10);
        drop(w);
    }
    assert_eq!(ptfuzz_harness::alloc_guard::take_hits(), 1);
    drop(v);
}
