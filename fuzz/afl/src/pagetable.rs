//! AFL++ target `pagetable` (`ptfuzz_harness::target::Pagetable`): raw bytes decoded as
//! libFuzzer's typed `fuzz_target!` decodes them (`arbitrary_take_rest`), so files carry over.

use ptfuzz_harness::target::{Pagetable, Target};

fn main() {
    afl::fuzz!(|data: &[u8]| Pagetable::fuzz(data));
}
