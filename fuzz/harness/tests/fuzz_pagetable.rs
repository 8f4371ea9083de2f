//! The page-table fuzz target under plain `cargo test` (bolero): first the committed
//! crashes and corpus under `tests/__fuzz__/`, then random inputs for a bounded time.

use ptfuzz_harness::target::{Pagetable, Target};

#[test]
fn pagetable() {
    bolero::check!()
        .with_arbitrary::<<Pagetable as Target>::Input>()
        .for_each(Pagetable::fuzz_input);
}
