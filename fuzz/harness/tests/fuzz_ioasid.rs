//! The `ioasid` fuzz target under plain `cargo test` (bolero): committed crashes and corpus
//! under `tests/__fuzz__/`, then random inputs for a bounded time.

use ptfuzz_harness::target::{Ioasid, Target};

#[test]
fn ioasid() {
    bolero::check!()
        .with_arbitrary::<<Ioasid as Target>::Input>()
        .for_each(Ioasid::fuzz_input);
}
