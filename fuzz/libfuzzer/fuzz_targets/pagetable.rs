//! libFuzzer target `pagetable` (`ptfuzz_harness::target::Pagetable`). Decoded as AFL and
//! bolero decode the same bytes, so corpus and crash files move between engines.
#![no_main]

include!("asan_options.rs");

use ptfuzz_harness::target::{Pagetable, Target};

libfuzzer_sys::fuzz_target!(|input: <Pagetable as Target>::Input| Pagetable::fuzz_input(&input));
