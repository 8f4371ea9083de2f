//! libFuzzer target `prealloc` (`ptfuzz_harness::target::Prealloc`), allocation guard on.
//! Decoded as AFL and bolero decode the same bytes, so corpus and crash files move between engines.
#![no_main]

include!("asan_options.rs");

use ptfuzz_harness::alloc_guard::Guard;
use ptfuzz_harness::target::{Prealloc, Target};

/// Any heap allocation inside a no-allocate section is a crash.
#[global_allocator]
static GUARD: Guard = Guard;

libfuzzer_sys::fuzz_target!(|input: <Prealloc as Target>::Input| Prealloc::fuzz_input(&input));
