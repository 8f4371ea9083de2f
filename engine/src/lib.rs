//! ptfuzz-engine: the system under test.
//!
//! IOMMU page tables in Arm LPAE formats (stage 1 and 2, 4K/16K/64K granules), built in a
//! simulated physical memory by one format-generic walker, with a table allocator (free
//! lists, deferred free, poisoning, custom hooks, failure injection) and TLB maintenance
//! through [`FlushOps`]. Semantics: `../shared/DESIGN.md` and `docs/SEMANTICS.md`.

// Safe Rust only: the system under test leans on the compiler, and Miri runs its tests
// (.ci/miri.sh).
#![forbid(unsafe_code)]

pub mod alloc;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod flush;
pub mod format;
pub mod geometry;
pub mod ioasid;
pub mod noalloc;
pub mod physmem;
pub mod prealloc;
pub mod prot;
mod reserve;

pub use alloc::{
    Counters, CustomAllocator, FrameState, Owner, PageMeta, PageState, TableAllocator, TableMeta,
};
pub use config::{Concat, DomainConfig, FormatKind, Granule, DEFAULT_PHYS_BASE};
pub use domain::Domain;
pub use error::{ErrorKind, MapError};
pub use events::{AllocEvent, DeviceWrite, OrderedFlushLog, PoolEvent, PoolId};
pub use flush::{FlushEvent, FlushLog, FlushOps, Gather, NullFlush};
pub use geometry::{ConfigError, Geometry};
pub use ioasid::{Ioasid, IoasidError, IoasidSet, INVALID_IOASID};
pub use physmem::PhysMem;
pub use prot::Prot;
