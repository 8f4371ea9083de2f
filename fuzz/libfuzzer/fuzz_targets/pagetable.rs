//! libFuzzer target: the bytes decode exactly as `ptfuzz_harness::run_bytes` does, so corpus
//! and crash files move between cargo-fuzz, AFL and bolero.
#![no_main]

include!("asan_options.rs");

use libfuzzer_sys::fuzz_target;
use ptfuzz_harness::input::Input;

fuzz_target!(|input: Input| ptfuzz_harness::run(&input));
