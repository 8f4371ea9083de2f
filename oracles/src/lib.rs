//! Everything that judges the engine. Shares only the plain types in
//! `ptfuzz_engine::{config, error, prot}` with it, never its page-table code, so an engine
//! bug cannot be repeated here.

pub mod model;

pub use model::Model;
