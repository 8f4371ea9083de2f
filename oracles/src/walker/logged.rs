//! The walks for the executor's domains (`Domain<OrderedFlushLog>`), instantiated here.
//!
//! Generic code is compiled into the crate that instantiates it. Were the executor to call
//! `check_range::<OrderedFlushLog>` itself, the whole walker would be compiled (and, in a fuzz
//! build, coverage-instrumented) as part of the executor. Through these two functions it is
//! compiled here, so a fuzz build can leave the oracles out of the coverage feedback
//! (`fuzz/libfuzzer/sancov-scope.sh`) and spend it on the engine and the executor.

use ptfuzz_engine::{Domain, OrderedFlushLog};

use super::Divergence;
use crate::model::Model;

/// [`super::check_range`] for an executor's domain.
#[inline(never)]
pub fn check_range_logged(
    dom: &Domain<OrderedFlushLog>,
    model: &Model,
    lo: u64,
    hi: u64,
    samples: &[u64],
) -> Result<(), Divergence> {
    super::check_range(dom, model, lo, hi, samples)
}

/// [`super::check_domain`] for an executor's domain.
#[inline(never)]
pub fn check_domain_logged(
    dom: &Domain<OrderedFlushLog>,
    model: &Model,
    samples: &[u64],
) -> Result<(), Divergence> {
    super::check_domain(dom, model, samples)
}

/// [`super::short::check_short_range`] for an executor's armv7s domain.
#[inline(never)]
pub fn check_short_range_logged(
    dom: &Domain<OrderedFlushLog>,
    model: &Model,
    lo: u64,
    hi: u64,
    samples: &[u64],
) -> Result<(), Divergence> {
    super::short::check_short_range(dom, model, lo, hi, samples)
}

/// [`super::short::check_short_domain`] for an executor's armv7s domain.
#[inline(never)]
pub fn check_short_domain_logged(
    dom: &Domain<OrderedFlushLog>,
    model: &Model,
) -> Result<(), Divergence> {
    super::short::check_short_domain(dom, model)
}
