//! The `ioasid` fuzz target under plain `cargo test` (bolero): committed crashes and corpus
//! under `tests/__fuzz__/`, then random inputs for a bounded time.

use ptfuzz_harness::ioasid::IoasidInput;

#[test]
fn ioasid() {
    bolero::check!()
        .with_arbitrary::<IoasidInput>()
        .for_each(ptfuzz_harness::ioasid::run);
}
