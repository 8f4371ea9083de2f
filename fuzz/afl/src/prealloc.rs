//! AFL++ target `prealloc` (`ptfuzz_harness::target::Prealloc`): raw bytes decoded as
//! libFuzzer's typed `fuzz_target!` decodes them (`arbitrary_take_rest`), so files carry over.

use ptfuzz_harness::alloc_guard::Guard;
use ptfuzz_harness::target::{Prealloc, Target};

/// Any heap allocation inside a no-allocate section is a crash.
#[global_allocator]
static GUARD: Guard = Guard;

fn main() {
    afl::fuzz!(|data: &[u8]| Prealloc::fuzz(data));
}
