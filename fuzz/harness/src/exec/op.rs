//! One page-table op on an engine domain and on the model, each guarded so a panic becomes
//! a failure: the part every executor shares (the checked one, the QEMU one).

use ptfuzz_engine::{Domain, FlushOps};
use ptfuzz_oracles::Model;

use super::checked::guarded;
use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::Command;

/// (engine outcome, model outcome) of a page-table op command. Callers handle `domain`,
/// `attach` and `ioasid.*` lines themselves; those are not ops on one domain's tables.
pub(crate) fn run_op<F: FlushOps>(
    e: &mut Domain<F>,
    m: &mut Model,
    cmd: &Command,
) -> Result<(Outcome, Outcome), FailureKind> {
    Ok(match *cmd {
        Command::Map {
            iova,
            pa,
            pgsize,
            count,
            prot,
            ..
        } => (
            Outcome::Map(guarded("engine", || e.map(iova, pa, pgsize, count, prot))?),
            Outcome::Map(guarded("model", || m.map(iova, pa, pgsize, count, prot))?),
        ),
        Command::Unmap {
            iova,
            pgsize,
            count,
            ..
        } => (
            Outcome::Unmap(guarded("engine", || e.unmap(iova, pgsize, count))?),
            Outcome::Unmap(guarded("model", || m.unmap(iova, pgsize, count))?),
        ),
        Command::Lookup { iova, .. } => (
            Outcome::Lookup(guarded("engine", || e.lookup(iova))?),
            Outcome::Lookup(guarded("model", || m.lookup(iova))?),
        ),
        Command::Grace { .. } => {
            guarded("engine", || e.grace_period())?;
            guarded("model", || m.grace_period())?;
            (Outcome::Done, Outcome::Done)
        }
        Command::FailNth { n, .. } => {
            guarded("engine", || e.fail_nth_alloc(Some(n)))?;
            guarded("model", || m.fail_nth(Some(n)))?;
            (Outcome::Done, Outcome::Done)
        }
        Command::Clear { .. } => {
            guarded("engine", || e.clear())?;
            guarded("model", || m.clear())?;
            (Outcome::Done, Outcome::Done)
        }
        Command::Sync { .. } => {
            guarded("engine", || e.sync_all())?;
            (Outcome::Done, Outcome::Done)
        }
        Command::JobPrepare {
            job, iova, size, ..
        } => (
            Outcome::Prepare(guarded("engine", || e.job_prepare(job, iova, size))?),
            Outcome::Prepare(guarded("model", || m.job_prepare(job, iova, size))?),
        ),
        Command::JobRun {
            job,
            iova,
            pa,
            pgsize,
            count,
            prot,
            ..
        } => (
            Outcome::Map(guarded("engine", || {
                e.job_run(job, iova, pa, pgsize, count, prot)
            })?),
            Outcome::Map(guarded("model", || {
                m.job_run(job, iova, pa, pgsize, count, prot)
            })?),
        ),
        Command::JobCleanup { job, .. } => (
            Outcome::Cleanup(guarded("engine", || e.job_cleanup(job))?),
            Outcome::Cleanup(guarded("model", || m.job_cleanup(job))?),
        ),
        Command::Reserve { iova, size, .. } => (
            Outcome::Reserve(guarded("engine", || e.reserve_va(iova, size))?),
            Outcome::Reserve(guarded("model", || m.reserve_va(iova, size))?),
        ),
        Command::Unreserve { iova, size, .. } => (
            Outcome::Unreserve(guarded("engine", || e.unreserve_va(iova, size))?),
            Outcome::Unreserve(guarded("model", || m.unreserve_va(iova, size))?),
        ),
        Command::Domain { .. } | Command::Attach { .. } | Command::Ioasid(_) => {
            unreachable!("`{}` is not an op on one domain's tables", cmd.word())
        }
    })
}
