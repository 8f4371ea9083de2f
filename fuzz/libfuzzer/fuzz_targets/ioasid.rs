//! libFuzzer target `ioasid` (`ptfuzz_harness::target::Ioasid`). Decoded as AFL and bolero decode
//! the same bytes, so corpus and crash files move between engines.
#![no_main]

include!("asan_options.rs");

use ptfuzz_harness::target::{Ioasid, Target};

libfuzzer_sys::fuzz_target!(|input: <Ioasid as Target>::Input| Ioasid::fuzz_input(&input));
