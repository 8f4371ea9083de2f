//! AFL target `prealloc` (see `../libfuzzer/fuzz_targets/prealloc.rs`), allocation guard on.

use ptfuzz_harness::alloc_guard::Guard;

#[global_allocator]
static GUARD: Guard = Guard;

fn main() {
    afl::fuzz!(|data: &[u8]| ptfuzz_harness::prealloc_run::run_prealloc_bytes(data));
}
