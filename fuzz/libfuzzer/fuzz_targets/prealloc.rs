//! libFuzzer target `prealloc`: jobs, reservations and plain map/unmap, with the
//! allocation guard installed (any heap allocation inside a no-allocate section crashes).
#![no_main]

include!("asan_options.rs");

use libfuzzer_sys::fuzz_target;
use ptfuzz_harness::alloc_guard::Guard;
use ptfuzz_harness::input::prealloc::PreallocInput;

#[global_allocator]
static GUARD: Guard = Guard;

fuzz_target!(|input: PreallocInput| ptfuzz_harness::prealloc_run::run_prealloc(&input));
