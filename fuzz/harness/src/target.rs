//! Differential execution behind one trait: the engine and the reference model answer the
//! same calls, so the replayer (and later the fuzz executor) drives both with one function.

use ptfuzz_engine::{Domain, ErrorKind, MapError, Prot};
use ptfuzz_oracles::Model;

use crate::outcome::Outcome;
use crate::trace::Command;

/// The operations a trace issues against one domain.
pub trait Target {
    fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError>;
    fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind>;
    fn lookup(&self, iova: u64) -> Option<u64>;

    /// Applies one op command. `None` for `domain`, which creates targets instead.
    fn apply(&mut self, cmd: &Command) -> Option<Outcome> {
        Some(match *cmd {
            Command::Domain { .. } => return None,
            Command::Map {
                iova,
                pa,
                pgsize,
                count,
                prot,
                ..
            } => Outcome::Map(self.map(iova, pa, pgsize, count, prot)),
            Command::Unmap {
                iova,
                pgsize,
                count,
                ..
            } => Outcome::Unmap(self.unmap(iova, pgsize, count)),
            Command::Lookup { iova, .. } => Outcome::Lookup(self.lookup(iova)),
        })
    }
}

impl Target for Domain {
    fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        Domain::map(self, iova, pa, pgsize, count, prot)
    }
    fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        Domain::unmap(self, iova, pgsize, count)
    }
    fn lookup(&self, iova: u64) -> Option<u64> {
        Domain::lookup(self, iova)
    }
}

impl Target for Model {
    fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        Model::map(self, iova, pa, pgsize, count, prot)
    }
    fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        Model::unmap(self, iova, pgsize, count)
    }
    fn lookup(&self, iova: u64) -> Option<u64> {
        Model::lookup(self, iova)
    }
}
