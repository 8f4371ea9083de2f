//! `ioasid`: IOASID allocation with untrusted custom allocators, PASIDs bound to two
//! page-table domains (`crate::ioasid`). Its ops pick IDs, ranges and data by position
//! among what the model holds, and its custom allocators' scripts live in the input, not in
//! the trace: a trace does not encode back into bytes.

use super::{crashed, Stop, Target, TargetName};
use crate::ioasid::{IoasidInput, MAX_IO_OPS};
use crate::trace::Trace;

pub struct Ioasid;

impl Target for Ioasid {
    const NAME: TargetName = TargetName::Ioasid;
    type Input = IoasidInput;

    fn ops(input: &IoasidInput) -> usize {
        input.ops.len().min(MAX_IO_OPS)
    }

    fn execute(input: &IoasidInput) -> Result<Trace, Stop> {
        crashed(crate::ioasid::execute(input))
    }
}
