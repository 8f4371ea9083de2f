//! AFL++ target `qemu_diff` (`ptfuzz_harness::target::QemuDiff`), the same bytes as
//! libFuzzer's.

use ptfuzz_harness::target::{QemuDiff, Target};

fn main() {
    afl::fuzz!(|data: &[u8]| QemuDiff::fuzz(data));
}
