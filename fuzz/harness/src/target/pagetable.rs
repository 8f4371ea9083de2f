//! `pagetable`: one page-table domain driven by the op language of `crate::input`, checked
//! against the model, the walker, the TLB oracle and frame accounting.

use super::{crashed, encode, EncodeError, Stop, Target, TargetName};
use crate::campaign::swarm::Swarm;
use crate::input::{Input, MAX_OPS};
use crate::trace::Trace;

pub struct Pagetable;

impl Target for Pagetable {
    const NAME: TargetName = TargetName::Pagetable;
    type Input = Input;

    fn ops(input: &Input) -> usize {
        input.ops.len().min(MAX_OPS)
    }

    fn execute(input: &Input) -> Result<Trace, Stop> {
        crashed(crate::run::execute(input))
    }

    fn encode(trace: &Trace) -> Result<Vec<u8>, EncodeError> {
        encode::pagetable(trace)
    }

    fn swarm(seed: u64) -> Option<Box<dyn FnMut() -> Input>> {
        let mut s = Swarm::new(seed);
        Some(Box::new(move || s.next_input()))
    }

    fn panic_trace(input: &Input) -> Option<Trace> {
        crate::campaign::panic_trace(input).ok()
    }
}
