//! VMSAv8-64 / VMSAv8-32 long-descriptor (LPAE) formats, stage 1 and stage 2: descriptors as
//! Linux io-pgtable-arm writes them, and the level layout (start level, concatenated roots,
//! block levels) from ARM-FACTS.md §1-§3. Every Arm LPAE constant lives under this module.

mod descriptor;
mod layout;

pub use descriptor::{Lpae, MAIR};
