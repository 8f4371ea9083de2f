//! AFL++ target `ioasid` (`ptfuzz_harness::target::Ioasid`): raw bytes decoded as libFuzzer's
//! typed `fuzz_target!` decodes them (`arbitrary_take_rest`), so files carry over.

use ptfuzz_harness::target::{Ioasid, Target};

fn main() {
    afl::fuzz!(|data: &[u8]| Ioasid::fuzz(data));
}
