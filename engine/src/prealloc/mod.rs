//! Per-job page-table preallocation (the VM_BIND design of the seeds): a job counts the
//! worst-case number of tables a map of its range can need, reserves that many pages into
//! its own pool when it is prepared, takes every table from that pool (and nowhere else)
//! while it runs, and returns the leftovers when it is cleaned up. Jobs are prepared in one
//! order and run in another; a job may be cleaned up without ever running.
//!
//! The domain-side API (`job_prepare`, `job_run`, `job_cleanup`) is in [`jobs`]; the pools
//! themselves live in the table allocator. Semantics: docs/SEMANTICS.md, "Preallocation".

pub mod count;
pub(crate) mod jobs;

pub use count::worst_case_tables;
pub use jobs::Job;
