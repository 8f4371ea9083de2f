//! The `ioasid` fuzz target: IOASID allocation with untrusted custom allocators, PASIDs
//! bound to two page-table domains, and a few map/unmap ops on those domains.
//!
//! * [`input`]: what `arbitrary` decodes bytes into ([`IoasidInput`]);
//! * [`resolve`]: abstract ops → trace commands, against the model's state (IDs mostly
//!   among outstanding or bound ones, ranges and data from small pools);
//! * [`run`]: decode and execute (the fuzz body is `crate::target::Ioasid`'s).

pub mod input;
pub mod resolve;
pub mod run;

pub use input::{IdPick, IoOp, IoasidInput, Script, MAX_IO_OPS, SELECTOR};
pub use run::{decode, execute};
