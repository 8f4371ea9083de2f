//! `prealloc`: per-job preallocation and refcounted VA reservation (`crate::prealloc_run`),
//! checked by the budget checker too. Its ops place ranges relative to pools of table edges
//! and pick jobs and reservations by position: a trace does not encode back into bytes.

use super::{crashed, Stop, Target, TargetName};
use crate::campaign::swarm_prealloc::PreallocSwarm;
use crate::input::prealloc::PreallocInput;
use crate::input::MAX_OPS;
use crate::trace::Trace;

pub struct Prealloc;

impl Target for Prealloc {
    const NAME: TargetName = TargetName::Prealloc;
    type Input = PreallocInput;

    fn ops(input: &PreallocInput) -> usize {
        input.ops.len().min(MAX_OPS)
    }

    fn execute(input: &PreallocInput) -> Result<Trace, Stop> {
        crashed(crate::prealloc_run::execute_prealloc(input).map(|(t, _)| t))
    }

    fn swarm(seed: u64) -> Option<Box<dyn FnMut() -> PreallocInput>> {
        let mut s = PreallocSwarm::new(seed);
        Some(Box::new(move || s.next_input()))
    }
}
