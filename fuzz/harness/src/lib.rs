//! ptfuzz harness: the trace format (the readable form of every fuzz input and crash), the
//! engine-vs-model executor behind one [`target::Target`] trait, and what the `ptfuzz` CLI
//! calls. Contracts: `../shared/DESIGN.md`, `docs/SEMANTICS.md`.

pub mod outcome;
pub mod replay;
pub mod target;
pub mod trace;

pub use outcome::Outcome;
pub use replay::{replay, replay_file, replay_files, Failure, FailureKind, FileError, Stats};
pub use trace::{Command, Expect, Trace, TraceLine};
