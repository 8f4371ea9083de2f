//! libFuzzer target: the page-table op language checked against QEMU's SMMUv3 translating
//! the same table bytes (one QEMU per worker, reused). Corpus files are those of `pagetable`.
#![no_main]

include!("asan_options.rs");

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ptfuzz_harness::qemu::run_qemu_bytes(data));
