//! libFuzzer target `ioasid`: IOASID allocation, untrusted custom allocators and PASID
//! binding. Bytes decode as `ptfuzz_harness::ioasid::run_bytes` does (AFL, bolero).
#![no_main]

include!("asan_options.rs");

use libfuzzer_sys::fuzz_target;
use ptfuzz_harness::ioasid::IoasidInput;

fuzz_target!(|input: IoasidInput| ptfuzz_harness::ioasid::run(&input));
