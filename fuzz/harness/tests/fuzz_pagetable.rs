//! The page-table fuzz target under plain `cargo test` (bolero): first the committed
//! crashes and corpus under `tests/__fuzz__/`, then random inputs for a bounded time.

use ptfuzz_harness::input::Input;

#[test]
fn pagetable() {
    bolero::check!()
        .with_arbitrary::<Input>()
        .for_each(ptfuzz_harness::run);
}
