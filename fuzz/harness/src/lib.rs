//! ptfuzz harness: the trace format (the readable form of every fuzz input and crash), the
//! executor that runs engine, model and oracles side by side, and what the `ptfuzz` CLI
//! calls. Contracts: `../shared/DESIGN.md`, `docs/SEMANTICS.md`.

pub mod alloc_guard;
pub mod campaign;
pub mod crash_frames;
pub mod exec;
pub mod input;
pub mod ioasid;
pub mod outcome;
pub mod prealloc_ratio;
pub mod prealloc_run;
pub mod qemu;
pub mod replay;
pub mod run;
pub mod target;
pub mod trace;

pub use outcome::Outcome;
pub use replay::{replay, replay_file, replay_files, Failure, FailureKind, FileError, Stats};
pub use run::{decode, execute, Crash};
pub use trace::{Command, Expect, Trace, TraceLine};
